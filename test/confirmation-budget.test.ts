import { beforeEach, describe, expect, vi } from 'vitest';
import { ProviderError } from '../src/core/errors.js';
import {
  ConfirmationLayer,
  type ConfirmationOptions,
  TokenBucket,
} from '../src/engine/confirmation/index.js';
import { memoryStore } from '../src/store/index.js';
import { FakeProvider, fakeIntent } from './support/fake-provider.js';
import { type CloseAfter, it } from './support/fixture.js';

/**
 * Polling cadence, rate budgets and timers, on vitest's fake clock: `Date.now`, `setTimeout` and the
 * layer's `now` all follow `advanceTimersByTimeAsync`, so read counts are exact.
 */

beforeEach(({ onTestFinished }) => {
  vi.useFakeTimers();
  // onTestFinished runs after the fixtures' teardown: what closeAfter closes is closed on this clock.
  onTestFinished(() => {
    vi.useRealTimers();
  });
});

/** What it opens is closed after the test (closeAfter). */
function setup(
  closeAfter: CloseAfter,
  options: Partial<ConfirmationOptions> & { statusReadsPerMinute?: number } = {},
) {
  const { statusReadsPerMinute, ...layerOptions } = options;
  const provider = new FakeProvider(statusReadsPerMinute === undefined ? {} : { statusReadsPerMinute });
  const store = memoryStore({ maxEntries: 1000 });
  const layer = new ConfirmationLayer({
    store,
    providers: new Map([[provider.id, provider]]),
    ...layerOptions,
  });
  closeAfter(store, layer);
  return { provider, store, layer };
}

function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

describe('polling back-off', () => {
  it('spaces provider reads further apart over time, up to the maximum delay', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter, {
      pendingTtlMs: 1,
      // Without jitter, so the back-off schedule itself is what is checked (jitter: below).
      poll: { initialMs: 100, factor: 2, maxMs: 1600, jitter: 0 },
    });
    await store.insert(fakeIntent(provider, 'in_1'));

    const waiting = layer.waitFor('in_1', { timeoutMs: 10_000 });
    await vi.advanceTimersByTimeAsync(10_000);

    expect((await waiting)?.status).toBe('pending');
    expect(gaps(provider.reads.map((r) => r.at))).toEqual([100, 200, 400, 800, 1600, 1600, 1600, 1600, 1600]);
  });

  it('serves polls from the cache while a read is fresh', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter, {
      pendingTtlMs: 1000,
      poll: { initialMs: 100, factor: 1, jitter: 0 },
    });
    await store.insert(fakeIntent(provider, 'in_1'));
    let polls = 0;

    const waiting = layer.waitFor('in_1', { timeoutMs: 2950, onPoll: () => polls++ });
    await vi.advanceTimersByTimeAsync(3000);
    await waiting;

    expect(polls).toBe(30);
    // A read is fresh for pendingTtlMs, so the first poll after that reads again.
    expect(provider.reads.map((r) => r.at - provider.reads[0]!.at)).toEqual([0, 1100, 2200]);
  });
});

describe('polling jitter', () => {
  it('draws each delay within ±20% of its back-off step by default, so waiters started together drift apart', async ({
    closeAfter,
  }) => {
    const { provider, store, layer } = setup(closeAfter, {
      pendingTtlMs: 1,
      poll: { initialMs: 100, factor: 2, maxMs: 1600 },
    });
    await store.insert(fakeIntent(provider, 'in_1'));
    await store.insert(fakeIntent(provider, 'in_2'));

    const waiting = [
      layer.waitFor('in_1', { timeoutMs: 10_000 }),
      layer.waitFor('in_2', { timeoutMs: 10_000 }),
    ];
    await vi.advanceTimersByTimeAsync(10_000);
    await Promise.all(waiting);

    const steps = [100, 200, 400, 800, 1600, 1600];
    const timesOf = (paymentId: string) =>
      provider.reads.filter((r) => r.paymentId === paymentId).map((r) => r.at);
    for (const paymentId of ['pay_in_1', 'pay_in_2']) {
      const observed = gaps(timesOf(paymentId)).slice(0, steps.length);
      expect(observed).toHaveLength(steps.length);
      observed.forEach((gap, i) => {
        expect(gap).toBeGreaterThanOrEqual(Math.floor(steps[i]! * 0.8));
        expect(gap).toBeLessThanOrEqual(Math.ceil(steps[i]! * 1.2) + 1);
      });
    }
    expect(timesOf('pay_in_1').slice(1)).not.toEqual(timesOf('pay_in_2').slice(1));
  });
});

describe('rate budget', () => {
  it('reads the payment just opened before older ones waiting for the same budget', async ({
    closeAfter,
  }) => {
    // 60 reads/min at full share: one read per second, a burst of 3.
    const { provider, store, layer } = setup(closeAfter, {
      statusReadsPerMinute: 60,
      budgetShare: 1,
      poll: { initialMs: 100, factor: 1, jitter: 0 },
    });
    const older = Array.from({ length: 20 }, (_, i) => `in_old_${i}`);
    for (const id of older) await store.insert(fakeIntent(provider, id));
    const waiting = older.map((id) => layer.waitFor(id, { timeoutMs: 300_000 }));
    // Long enough that the older payments' activity is past the age limit.
    await vi.advanceTimersByTimeAsync(70_000);
    const before = provider.reads.length;

    // A payment created now, and an older one whose payer just opened its page.
    await store.insert(fakeIntent(provider, 'in_new'));
    waiting.push(layer.waitFor('in_new', { timeoutMs: 300_000 }));
    layer.noteActivity('in_old_19');
    await vi.advanceTimersByTimeAsync(2_100);

    const next = provider.reads.slice(before).map((r) => r.paymentId);
    // Round-robin would serve the 20 older payments first (about 20 s); here the new one is read
    // at the first free token, and the one whose page was just opened with the next.
    expect(next.slice(0, 2)).toEqual(['pay_in_new', 'pay_in_old_19']);
    layer.close();
    await Promise.all(waiting);
  });

  it('passes over an older read for at most the age limit while newer ones keep coming', async () => {
    const { TokenBucket: Bucket, AGE_LIMIT_MS } = await import('../src/engine/confirmation/rate-budget.js');
    const bucket = new Bucket({ perMinute: 60, now: () => Date.now() });
    const granted: string[] = [];
    for (let i = 0; i < 3; i++) await bucket.acquire(); // the burst, spent
    const old = bucket
      .acquire(undefined, { activeAt: Date.now() - 10 * 60_000 })
      .then(() => granted.push('old'));
    // A new, just-active read queues every second; the budget serves one per second.
    const fresh: Promise<unknown>[] = [];
    for (let s = 0; s < AGE_LIMIT_MS / 1000 + 5; s++) {
      fresh.push(bucket.acquire(undefined, { activeAt: Date.now() }).then(() => granted.push(`new_${s}`)));
      await vi.advanceTimersByTimeAsync(1000);
    }
    await old;
    expect(granted.indexOf('old')).toBeGreaterThan(0);
    expect(granted.indexOf('old')).toBeLessThanOrEqual(AGE_LIMIT_MS / 1000 + 1);
    bucket.close();
    await Promise.all(fresh);
  });

  it('reads a payment just made ahead of a backlog bigger than a minute of budget, which still moves', async () => {
    const { TokenBucket: Bucket, AGE_LIMIT_MS } = await import('../src/engine/confirmation/rate-budget.js');
    // One read per second; 100 reads queued at once, all just made: more than a minute of budget.
    const bucket = new Bucket({ perMinute: 60, now: () => Date.now() });
    const granted: string[] = [];
    for (let i = 0; i < 3; i++) await bucket.acquire(); // the burst, spent
    const backlog = Array.from({ length: 100 }, (_, i) =>
      bucket.acquire(undefined, { activeAt: Date.now() }).then(() => granted.push(`backlog_${i}`)),
    );
    await vi.advanceTimersByTimeAsync(AGE_LIMIT_MS + 5_000);
    const before = granted.length;
    // A payment made now, once the backlog's own activity is past the age limit.
    const fresh = bucket.acquire(undefined, { activeAt: Date.now() }).then(() => granted.push('fresh'));
    await vi.advanceTimersByTimeAsync(2_100);
    // Served within two reads (the overdue backlog gets every other one), not after the ~35 left.
    expect(granted.slice(before, before + 2)).toContain('fresh');
    // The backlog kept moving in queue order meanwhile.
    const served = granted.filter((g) => g.startsWith('backlog_'));
    expect(served).toEqual(served.map((_, i) => `backlog_${i}`));
    expect(served.length).toBeGreaterThanOrEqual(AGE_LIMIT_MS / 1000 + 5);
    bucket.close();
    await Promise.all([...backlog, fresh]);
  });

  it('keeps 200 waiting intents under the provider budget and serves them in turn', async ({
    closeAfter,
  }) => {
    // 60 reads/min at full share: one read per second, a burst of 3.
    const { provider, store, layer } = setup(closeAfter, { statusReadsPerMinute: 60, budgetShare: 1 });
    const ids = Array.from({ length: 200 }, (_, i) => `in_${i}`);
    for (const id of ids) await store.insert(fakeIntent(provider, id));

    const waiting = ids.map((id) => layer.waitFor(id, { timeoutMs: 120_000 }));
    await vi.advanceTimersByTimeAsync(30_000);

    expect(provider.readCount).toBeLessThanOrEqual(30 + 3);
    expect(provider.readCount).toBeGreaterThanOrEqual(30);
    // Fair: nobody is read twice while others have not been read once.
    expect(new Set(provider.reads.map((r) => r.paymentId)).size).toBe(provider.readCount);

    layer.close();
    const results = await Promise.all(waiting);
    expect(results.every((r) => r?.status === 'pending')).toBe(true);
  });

  it('answers direct checks with the stored status once the budget is spent', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter, { statusReadsPerMinute: 60, budgetShare: 1 });
    const ids = Array.from({ length: 100 }, (_, i) => `in_${i}`);
    for (const id of ids) await store.insert(fakeIntent(provider, id));
    provider.setStatus('pay_in_99', 'paid');

    const answers = await Promise.all(ids.map((id) => layer.check(id)));

    expect(provider.readCount).toBe(3);
    expect(answers.every((a) => a?.status === 'pending' && a.error === undefined)).toBe(true);

    await vi.advanceTimersByTimeAsync(1000);
    expect((await layer.check('in_99', { fresh: true }))?.status).toBe('paid');
    expect(provider.readCount).toBe(4);
  });

  it('pauses a provider for the Retry-After of a 429', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter, { statusReadsPerMinute: 600 });
    await store.insert(fakeIntent(provider, 'in_1'));
    provider.failNext(
      new ProviderError('fake', 'rate_limited', 'HTTP 429', { status: 429, retryAfterMs: 10_000 }),
    );

    const limited = await layer.check('in_1');
    expect(limited?.status).toBe('unknown');
    expect(limited?.error?.code).toBe('rate_limited');

    expect((await layer.check('in_1', { fresh: true }))?.status).toBe('pending');
    provider.setStatus('pay_in_1', 'paid');
    const waiting = layer.waitFor('in_1', { timeoutMs: 60_000 });
    await vi.advanceTimersByTimeAsync(9_000);
    expect(provider.readCount).toBe(1);

    await vi.advanceTimersByTimeAsync(2_000);
    expect((await waiting)?.status).toBe('paid');
    expect(provider.readCount).toBe(2);
  });

  it('token bucket: grants in FIFO order, refunds, and never beyond its rate', async () => {
    const bucket = new TokenBucket({ perMinute: 60, now: () => Date.now() });
    const order: number[] = [];
    for (let i = 0; i < 3; i++) expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);

    const grants = [1, 2, 3].map((n) => bucket.acquire().then((ok) => ok && order.push(n)));
    const aborted = new AbortController();
    const cancelled = bucket.acquire(aborted.signal);
    aborted.abort();
    expect(await cancelled).toBe(false);

    await vi.advanceTimersByTimeAsync(1000);
    expect(order).toEqual([1]);
    bucket.refund();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all(grants);
    expect(order).toEqual([1, 2, 3]);
    bucket.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('timers', () => {
  it('clears every timer when a waiter resolves and when the layer closes', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter, { statusReadsPerMinute: 60, budgetShare: 1 });
    const ids = Array.from({ length: 10 }, (_, i) => `in_${i}`);
    for (const id of ids) await store.insert(fakeIntent(provider, id));

    const first = layer.waitFor('in_0', { timeoutMs: 60_000 });
    await vi.advanceTimersByTimeAsync(10);
    await layer.applyProviderState('in_0', 'fake', {
      paymentId: 'pay_in_0',
      status: 'paid',
      rawStatus: 'paid',
    });
    expect((await first)?.status).toBe('paid');
    await vi.advanceTimersByTimeAsync(5); // lets the store's own 1 ms clock-debounce timers lapse
    expect(vi.getTimerCount()).toBe(0);

    // Waiters sleeping, waiting for tokens and holding deadlines: all cleared by close.
    const waiting = ids.slice(1).map((id) => layer.waitFor(id, { timeoutMs: 60_000 }));
    await vi.advanceTimersByTimeAsync(2000);
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    layer.close();
    await Promise.all(waiting);
    await vi.advanceTimersByTimeAsync(5);
    expect(vi.getTimerCount()).toBe(0);
  });
});
