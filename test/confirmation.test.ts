import { describe, expect, vi } from 'vitest';
import { ConfigError, ProviderError } from '../src/core/errors.js';
import {
  type Confirmation,
  ConfirmationLayer,
  type ConfirmationOptions,
} from '../src/engine/confirmation/index.js';
import { memoryStore } from '../src/store/index.js';
import type { PaymentStore, StatusChange } from '../src/store/types.js';
import { FakeProvider, fakeIntent } from './support/fake-provider.js';
import { type CloseAfter, it } from './support/fixture.js';

/** What it opens is closed after the test (closeAfter). */
function setup(closeAfter: CloseAfter, options: Partial<ConfirmationOptions> = {}) {
  const provider = new FakeProvider();
  const store = options.store ?? memoryStore();
  const layer = new ConfirmationLayer({ store, providers: new Map([[provider.id, provider]]), ...options });
  closeAfter(store, layer);
  return { provider, store, layer };
}

function changesOf(closeAfter: CloseAfter, store: PaymentStore): StatusChange[] {
  const changes: StatusChange[] = [];
  closeAfter({ close: store.subscribe((change) => changes.push(change)) });
  return changes;
}

describe('check', () => {
  it('coalesces 50 concurrent checks of a pending intent into one provider read', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));
    provider.closeGate();
    const checks = Array.from({ length: 50 }, () => layer.check('in_1'));
    provider.openGate();
    const answers = await Promise.all(checks);

    expect(provider.readCount).toBe(1);
    expect(answers.map((a) => a?.status)).toEqual(Array(50).fill('pending'));
    // Within pendingTtlMs the cached answer serves further checks.
    expect((await layer.check('in_1'))?.status).toBe('pending');
    expect(provider.readCount).toBe(1);
  });

  it('answers final statuses from the store without asking the provider', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_paid', 'paid'));
    await store.insert(fakeIntent(provider, 'in_expired', 'expired'));

    expect((await layer.check('in_paid'))?.status).toBe('paid');
    expect((await layer.check('in_expired', { fresh: true }))?.status).toBe('expired');
    expect(provider.readCount).toBe(0);
  });

  it('returns undefined for an unknown intent', async ({ closeAfter }) => {
    const { provider, layer } = setup(closeAfter);
    expect(await layer.check('nope')).toBeUndefined();
    expect(await layer.waitFor('nope', { timeoutMs: 1000 })).toBeUndefined();
    expect(provider.readCount).toBe(0);
  });

  it('writes a provider read through the store and publishes the status change', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));
    const changes = changesOf(closeAfter, store);
    provider.setStatus('pay_in_1', 'paid', 'complete/paid');

    const answer = await layer.check('in_1');

    expect(answer?.status).toBe('paid');
    const stored = await store.get('in_1');
    expect(stored?.status).toBe('paid');
    expect(stored?.attempts[0]).toMatchObject({ status: 'paid', rawStatus: 'complete/paid' });
    expect(changes).toEqual([{ intentId: 'in_1', status: 'paid', version: stored?.version }]);
    // Paid is final: later checks need no provider read.
    await layer.check('in_1', { fresh: true });
    expect(provider.readCount).toBe(1);
  });

  it('reports an unreachable provider as unknown with the error, and leaves the store alone', async ({
    closeAfter,
  }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));
    provider.setStatus('pay_in_1', 'paid');
    provider.failNext(new ProviderError('fake', 'provider_unavailable', 'HTTP 503', { status: 503 }));

    const answer = await layer.check('in_1');

    expect(answer?.status).toBe('unknown');
    expect(answer?.error).toBeInstanceOf(ProviderError);
    expect(answer?.error?.code).toBe('provider_unavailable');
    const stored = await store.get('in_1');
    expect(stored?.version).toBe(1);
    expect(stored?.status).toBe('pending');
    // The next fresh read reaches the provider again and learns the truth.
    expect((await layer.check('in_1', { fresh: true }))?.status).toBe('paid');
  });

  it('treats a malformed provider answer as unknown, never as paid', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));
    provider.getPayment = async () => ({ paymentId: 'pay_in_1', status: 'PAID' }) as never;

    const answer = await layer.check('in_1');

    expect(answer?.status).toBe('unknown');
    expect(answer?.error?.code).toBe('malformed_response');
    expect((await store.get('in_1'))?.status).toBe('pending');
  });

  it('reads the live (last) attempt', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    const intent = fakeIntent(provider, 'in_1');
    provider.setStatus('pay_new', 'paid');
    intent.attempts.push({ ...intent.attempts[0]!, paymentId: 'pay_new', idempotencyKey: 'key_new' });
    await store.insert(intent);

    expect((await layer.check('in_1'))?.status).toBe('paid');
    expect(provider.reads.map((r) => r.paymentId)).toEqual(['pay_new']);
    const stored = await store.get('in_1');
    expect(stored?.attempts.map((a) => a.status)).toEqual(['pending', 'paid']);
  });

  it('refuses invalid options with a ConfigError', ({ closeAfter }) => {
    const store = memoryStore();
    closeAfter(store);
    const providers = new Map([['fake', new FakeProvider()]]);
    expect(() => new ConfirmationLayer({ store, providers, budgetShare: 2 })).toThrow(ConfigError);
    expect(() => new ConfirmationLayer({ store, providers, pendingTtlMs: 0 })).toThrow(ConfigError);
    const stalled = new Map([['fake', new FakeProvider({ statusReadsPerMinute: 0 })]]);
    expect(() => new ConfirmationLayer({ store, providers: stalled })).toThrow(/statusReadsPerMinute/);
  });
});

describe('fresh check from a copy the caller holds', () => {
  /** A store that counts its reads. */
  function counted(closeAfter: CloseAfter) {
    const inner = memoryStore();
    const reads = { count: 0 };
    const store: PaymentStore = new Proxy(inner, {
      get(target, key, receiver) {
        if (key === 'get')
          return (id: string) => {
            reads.count++;
            return target.get(id);
          };
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return { ...setup(closeAfter, { store }), reads };
  }

  it('asks the provider and writes its answer without reading the store again', async ({ closeAfter }) => {
    const { provider, store, layer, reads } = counted(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));
    provider.setStatus('pay_in_1', 'paid', 'complete/paid');
    const known = await store.get('in_1');
    reads.count = 0;

    const answer = await layer.check('in_1', { fresh: true, known });

    expect(answer?.status).toBe('paid');
    expect(provider.readCount).toBe(1);
    expect(await store.get('in_1')).toMatchObject({ status: 'paid', version: 2 });
    expect(reads.count).toBe(1); // the line above
  });

  it('reads the store instead when another instance announced a newer version, spending no provider read', async ({
    closeAfter,
  }) => {
    const { provider, store, layer, reads } = counted(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));
    const known = (await store.get('in_1'))!;
    // Another instance learned it was paid and said so.
    const paid = await store.update({ ...known, status: 'paid' }, known.version);
    await store.publish({ intentId: 'in_1', status: 'paid', version: paid!.version });
    reads.count = 0;

    const answer = await layer.check('in_1', { fresh: true, known });

    expect(answer?.status).toBe('paid');
    expect(provider.readCount).toBe(0);
    expect(reads.count).toBe(1);
  });

  it('reads the store again after waiting out a provider read already in flight', async ({ closeAfter }) => {
    const { provider, store, layer } = counted(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));
    const known = await store.get('in_1');
    provider.setStatus('pay_in_1', 'paid', 'complete/paid');
    provider.closeGate();
    const polling = layer.check('in_1');
    const fresh = layer.check('in_1', { fresh: true, known });
    provider.openGate();

    expect((await polling)?.status).toBe('paid');
    expect((await fresh)?.status).toBe('paid');
    // The copy predates the read in flight, which found it paid: no second provider read.
    expect(provider.readCount).toBe(1);
  });
});

describe('applyProviderState', () => {
  it('moves forward only: a stale pending after paid is ignored', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));
    const changes = changesOf(closeAfter, store);

    const paid = await layer.applyProviderState('in_1', 'fake', {
      paymentId: 'pay_in_1',
      status: 'paid',
      rawStatus: 'complete/paid',
    });
    const stale = await layer.applyProviderState('in_1', 'fake', {
      paymentId: 'pay_in_1',
      status: 'pending',
      rawStatus: 'open/unpaid',
    });

    expect(paid?.status).toBe('paid');
    expect(stale).toEqual(paid);
    expect((await store.get('in_1'))?.attempts[0]?.rawStatus).toBe('complete/paid');
    expect(changes).toEqual([{ intentId: 'in_1', status: 'paid', version: 2 }]);
    expect((await layer.check('in_1'))?.status).toBe('paid');
    expect(provider.readCount).toBe(0);
  });

  it('lets a late paid override a local expiry (money moved)', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1', 'expired'));

    const after = await layer.applyProviderState('in_1', 'fake', {
      paymentId: 'pay_in_1',
      status: 'paid',
      rawStatus: 'paid',
    });

    expect(after?.status).toBe('paid');
    expect((await layer.check('in_1'))?.status).toBe('paid');
  });

  it('never writes unknown, and ignores payments the intent does not own', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));

    await layer.applyProviderState('in_1', 'fake', {
      paymentId: 'pay_in_1',
      status: 'unknown',
      rawStatus: '?',
    });
    await layer.applyProviderState('in_1', 'fake', { paymentId: 'other', status: 'paid', rawStatus: 'paid' });
    await layer.applyProviderState('in_1', 'elsewhere', {
      paymentId: 'pay_in_1',
      status: 'paid',
      rawStatus: 'paid',
    });

    const stored = await store.get('in_1');
    expect(stored?.version).toBe(1);
    expect(stored?.status).toBe('pending');
    const missing = await layer.applyProviderState('nope', 'fake', {
      paymentId: 'x',
      status: 'paid',
      rawStatus: 'paid',
    });
    expect(missing).toBeUndefined();
  });

  it('rejects a malformed state without touching the store', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));
    const bad = { paymentId: 'pay_in_1', status: 'PAID', rawStatus: 'paid' } as never;

    await expect(layer.applyProviderState('in_1', 'fake', bad)).rejects.toThrow(ProviderError);
    expect((await store.get('in_1'))?.version).toBe(1);
  });

  it('applies concurrent updates through compare-and-set without losing one', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    const intent = fakeIntent(provider, 'in_1');
    intent.attempts.unshift({ ...intent.attempts[0]!, paymentId: 'pay_old', idempotencyKey: 'key_old' });
    await store.insert(intent);

    await Promise.all([
      layer.applyProviderState('in_1', 'fake', {
        paymentId: 'pay_old',
        status: 'expired',
        rawStatus: 'expired',
      }),
      layer.applyProviderState('in_1', 'fake', { paymentId: 'pay_in_1', status: 'paid', rawStatus: 'paid' }),
    ]);

    const stored = await store.get('in_1');
    expect(stored?.attempts.map((a) => a.status)).toEqual(['expired', 'paid']);
    // An earlier attempt expiring does not move the intent; the live attempt does.
    expect(stored?.status).toBe('paid');
    expect(stored?.version).toBe(3);
  });
});

describe('waitFor', () => {
  it('wakes at once when another instance applies paid, with no extra provider reads', async ({
    closeAfter,
  }) => {
    const { provider, store, layer } = setup(closeAfter, { poll: { initialMs: 60_000 } });
    const other = new ConfirmationLayer({ store, providers: new Map([[provider.id, provider]]) });
    closeAfter(other);
    await store.insert(fakeIntent(provider, 'in_1'));
    const polls: Confirmation[] = [];

    const waiting = layer.waitFor('in_1', { timeoutMs: 60_000, onPoll: (c) => polls.push(c) });
    await expect.poll(() => polls.length).toBe(1);
    await other.applyProviderState('in_1', 'fake', {
      paymentId: 'pay_in_1',
      status: 'paid',
      rawStatus: 'paid',
    });
    const result = await waiting;

    expect(result?.status).toBe('paid');
    expect(polls.map((c) => c.status)).toEqual(['pending', 'paid']);
    expect(provider.readCount).toBe(1);
  });

  it('resolves at once for an intent that is already final', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1', 'failed'));
    expect((await layer.waitFor('in_1', { timeoutMs: 60_000 }))?.status).toBe('failed');
    expect(provider.readCount).toBe(0);
  });

  it('returns the latest pending confirmation when the timeout passes', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter, { pendingTtlMs: 1, poll: { initialMs: 20 } });
    await store.insert(fakeIntent(provider, 'in_1'));

    const result = await layer.waitFor('in_1', { timeoutMs: 150 });

    expect(result?.status).toBe('pending');
    expect(result?.intent.id).toBe('in_1');
    expect(provider.readCount).toBeGreaterThanOrEqual(1);
  });

  it('stops at an abort and returns the latest state', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter, { poll: { initialMs: 60_000 } });
    await store.insert(fakeIntent(provider, 'in_1'));
    const controller = new AbortController();

    const result = await layer.waitFor('in_1', {
      timeoutMs: 60_000,
      signal: controller.signal,
      onPoll: () => controller.abort(),
    });

    expect(result?.status).toBe('pending');
    expect(provider.readCount).toBe(1);
  });

  it('wakes every waiter of one intent, also after one of them left', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter, { poll: { initialMs: 60_000 } });
    await store.insert(fakeIntent(provider, 'in_1'));
    const left = new AbortController();
    let polls = 0;
    const onPoll = () => {
      polls += 1;
    };
    const leaving = layer.waitFor('in_1', { timeoutMs: 600_000, signal: left.signal, onPoll });
    const first = layer.waitFor('in_1', { timeoutMs: 600_000, onPoll });
    const second = layer.waitFor('in_1', { timeoutMs: 600_000, onPoll });
    await vi.waitFor(() => expect(polls).toBe(3));
    left.abort();
    expect((await leaving)?.status).toBe('pending');

    await layer.applyProviderState('in_1', 'fake', {
      paymentId: 'pay_in_1',
      status: 'paid',
      rawStatus: 'paid',
    });

    expect((await first)?.status).toBe('paid');
    expect((await second)?.status).toBe('paid');
  });

  it('ends at an abort that comes while it sleeps, without ever listening on the signal', async ({
    closeAfter,
  }) => {
    const { provider, store, layer } = setup(closeAfter, { poll: { initialMs: 60_000 } });
    await store.insert(fakeIntent(provider, 'in_1'));
    const controller = new AbortController();
    // A listener on an AbortSignal makes Node build its event tables, kept after removal: a call
    // waiting for its payment must not pay for that.
    const listened = vi.spyOn(controller.signal, 'addEventListener');
    let polled: () => void = () => {};
    const firstPoll = new Promise<void>((resolve) => {
      polled = resolve;
    });

    const waiting = layer.waitFor('in_1', {
      timeoutMs: 600_000,
      signal: controller.signal,
      onPoll: () => polled(),
    });
    await firstPoll;
    controller.abort();
    const result = await waiting;

    expect(result?.status).toBe('pending');
    expect(provider.readCount).toBe(1);
    expect(listened).not.toHaveBeenCalled();
  });

  it('returns the stored state at once for a signal that is already aborted', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));

    const result = await layer.waitFor('in_1', { timeoutMs: 60_000, signal: AbortSignal.abort() });

    expect(result?.status).toBe('pending');
    expect(provider.readCount).toBe(0);
  });

  it('does not wait for a hanging provider read past its deadline', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));
    provider.closeGate();

    const result = await layer.waitFor('in_1', { timeoutMs: 50 });

    expect(result?.status).toBe('pending');
    provider.openGate();
  });

  it('resolves when `until` accepts a non-final state', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter);
    await store.insert(fakeIntent(provider, 'in_1'));

    const result = await layer.waitFor('in_1', { timeoutMs: 60_000, until: (c) => c.status === 'pending' });

    expect(result?.status).toBe('pending');
  });

  it('picks up a payment the provider reports as paid while waiting', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter, {
      pendingTtlMs: 1,
      poll: { initialMs: 10, maxMs: 20 },
    });
    await store.insert(fakeIntent(provider, 'in_1'));

    const waiting = layer.waitFor('in_1', {
      timeoutMs: 30_000,
      onPoll: () => provider.setStatus('pay_in_1', 'paid'),
    });

    expect((await waiting)?.status).toBe('paid');
    expect((await store.get('in_1'))?.status).toBe('paid');
  });

  it('resolves pending waiters with their latest state on close', async ({ closeAfter }) => {
    const { provider, store, layer } = setup(closeAfter, { poll: { initialMs: 60_000 } });
    await store.insert(fakeIntent(provider, 'in_1'));
    const polls: Confirmation[] = [];

    const waiting = layer.waitFor('in_1', { timeoutMs: 60_000, onPoll: (c) => polls.push(c) });
    await expect.poll(() => polls.length).toBe(1);
    layer.close();

    expect((await waiting)?.status).toBe('pending');
    // After close, check still answers from the store, without provider reads.
    expect((await layer.check('in_1'))?.status).toBe('pending');
    expect(provider.readCount).toBe(1);
  });

  it('holds no timer that keeps the process alive, and leaves none behind after close', async ({
    closeAfter,
  }) => {
    const provider = new FakeProvider({ statusReadsPerMinute: 60 });
    const store = memoryStore();
    const layer = new ConfirmationLayer({ store, providers: new Map([[provider.id, provider]]) });
    closeAfter(store, layer);
    const ids = Array.from({ length: 20 }, (_, i) => `in_${i}`);
    for (const id of ids) await store.insert(fakeIntent(provider, id));
    const refTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = refTimers();

    // Sleeping waiters, waiters queued for the rate budget, and their deadlines.
    const waiting = ids.map((id) => layer.waitFor(id, { timeoutMs: 60_000 }));
    await expect.poll(() => provider.readCount).toBeGreaterThanOrEqual(2);
    expect(refTimers()).toBeLessThanOrEqual(before);

    layer.close();
    const results = await Promise.all(waiting);
    expect(results.map((r) => r?.status)).toEqual(Array(20).fill('pending'));
    expect(refTimers()).toBeLessThanOrEqual(before);
  });
});
