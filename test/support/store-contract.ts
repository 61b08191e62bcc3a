import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { newIntentId, subjectSlot } from '../../src/core/ids.js';
import {
  bindingKey,
  type IntentRecord,
  type PaymentStore,
  type StatusChange,
} from '../../src/store/index.js';
import { isUsageStore } from '../../src/store/types.js';

const INSERTED = { kind: 'inserted' } as const;
const TAKEN = { kind: 'taken' } as const;

export interface StoreUnderTest {
  store: PaymentStore;
  /** A second instance on the same backend (another process, as far as the store can tell). */
  other?: PaymentStore;
  /**
   * False where changes published by two instances may reach a subscriber in either order (Redis
   * Cluster: each publish enters at its own node and crosses the cluster bus). The engine does not
   * need that order: a change names the version, and waiters read the record.
   */
  orderedAcrossInstances?: boolean;
  cleanup(): Promise<void>;
}

/**
 * A valid record of a fresh subject (colons, spaces and non-ASCII in it on purpose), its id made
 * for that subject as the engine makes ids.
 */
export function makeRecord(overrides: Partial<IntentRecord> = {}): IntentRecord {
  const now = Date.now();
  const subject = overrides.binding?.subject ?? `user|${randomUUID()} ü/x:y`;
  const id = overrides.id ?? newIntentId(subject);
  return {
    id,
    version: 1,
    binding: { tool: 'process_data', argsHash: 'a1b2c3', amount: 25, currency: 'USD', subject },
    argsJson: '{"data":"x"}',
    description: 'Process data',
    status: 'pending',
    eligible: ['walleot', 'stripe'],
    attempts: [],
    run: 'unused',
    fence: 0,
    runErrors: [],
    createdAt: now,
    updatedAt: now,
    expiresAt: now + 60_000,
    ...overrides,
  };
}

export function attempt(providerId: string, paymentId: string): IntentRecord['attempts'][number] {
  return {
    providerId,
    paymentId,
    url: `https://pay.example/${paymentId}`,
    status: 'pending',
    rawStatus: 'pending',
    idempotencyKey: `idem-${paymentId}`,
    createdAt: Date.now(),
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls until `check` holds; fails with `what` after a generous bound (not a timing assertion). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  await vi.waitFor(
    async () => {
      if (!(await check())) throw new Error(`timed out waiting for ${what}`);
    },
    { timeout: 10_000, interval: 10 },
  );
}

/** Waits until the wall clock is safely past `expiresAt`. */
export async function waitPast(expiresAt: number): Promise<void> {
  const remaining = expiresAt - Date.now();
  await sleep(Math.max(0, remaining) + 30);
}

/** Records the status changes a store delivers. */
export function recorder(store: PaymentStore) {
  const changes: StatusChange[] = [];
  const unsubscribe = store.subscribe((change) => {
    changes.push(change);
  });
  return {
    changes,
    unsubscribe,
    of: (intentId: string) => changes.filter((c) => c.intentId === intentId),
  };
}

/**
 * Subscriptions over a network (Redis pub/sub) go live a moment after `subscribe` returns.
 * Publishes probes until every given store has received one, so later messages are not lost.
 */
export async function untilSubscribed(publisher: PaymentStore, subscribers: PaymentStore[]): Promise<void> {
  const probeId = `probe-${randomUUID()}`;
  const seen = subscribers.map(() => false);
  const offs = subscribers.map((store, i) =>
    store.subscribe((change) => {
      if (change.intentId === probeId) seen[i] = true;
    }),
  );
  try {
    await eventually(async () => {
      await publisher.publish({ intentId: probeId, status: 'pending', version: 1 });
      return seen.every(Boolean);
    }, 'subscriptions to go live');
  } finally {
    for (const off of offs) off();
  }
}

/** Tries to change a record in place; a frozen part refuses with a TypeError, which is fine here. */
function attemptChange(change: () => void): void {
  try {
    change();
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
  }
}

/** Every object and array in the value is frozen. */
export function expectDeeplyFrozen(value: unknown, path = 'record'): void {
  if (typeof value !== 'object' || value === null) return;
  expect(Object.isFrozen(value), `${path} is frozen`).toBe(true);
  for (const [key, child] of Object.entries(value)) expectDeeplyFrozen(child, `${path}.${key}`);
}

/** A compare-and-set loop, the way the router and the confirmation layer use `update`. */
async function incrementFence(store: PaymentStore, intentId: string): Promise<number> {
  for (let tries = 1; ; tries += 1) {
    const current = await store.get(intentId);
    if (current === undefined) throw new Error(`intent ${intentId} vanished`);
    const written = await store.update({ ...current, fence: current.fence + 1 }, current.version);
    if (written !== undefined) return tries;
  }
}

/**
 * The behaviour every PaymentStore must have. `makeStore` runs before each test and gives a fresh,
 * empty store (and, for shared backends, a second instance on the same data).
 */
export function describeStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`${name}: PaymentStore contract`, () => {
    let ctx: StoreUnderTest;
    let store: PaymentStore;
    /** The second instance where there is one, else the same store. */
    let other: PaymentStore;

    beforeEach(async () => {
      ctx = await makeStore();
      store = ctx.store;
      other = ctx.other ?? ctx.store;
    });

    afterEach(async () => {
      await ctx.cleanup();
    });

    describe('records', () => {
      it('inserts with version 1, reads back, and refuses a duplicate id', async () => {
        const record = makeRecord({ version: 7 });
        expect(await store.insert(record)).toEqual(INSERTED);
        expect(await other.get(record.id)).toEqual({ ...record, version: 1 });

        expect(await other.insert({ ...record, description: 'second' })).toEqual(TAKEN);
        expect((await store.get(record.id))?.description).toBe('Process data');
        expect(await store.get(`missing-${record.id}`)).toBeUndefined();
      });

      it('keeps every field of a full record, optional ones included', async () => {
        const now = Date.now();
        const record = makeRecord({
          status: 'paid',
          attempts: [{ ...attempt('stripe', 'cs_full'), expiresAt: now + 30_000 }],
          run: 'done',
          lease: { owner: 'instance-a', until: now + 5_000, fence: 3 },
          fence: 3,
          result: { result: { content: [{ type: 'text', text: 'ok' }], isError: false }, completedAt: now },
          runErrors: ['first run failed'],
        });
        await store.insert(record);
        expect(await other.get(record.id)).toEqual({ ...record, version: 1 });
      });

      it('compare-and-set writes only over the expected version', async () => {
        const record = makeRecord();
        await store.insert(record);

        const written = await other.update({ ...record, status: 'paid', updatedAt: Date.now() }, 1);
        expect(written).toMatchObject({ id: record.id, version: 2, status: 'paid' });
        expect(await store.get(record.id)).toEqual(written);

        expect(await store.update({ ...record, status: 'failed' }, 1)).toBeUndefined();
        expect(await store.update({ ...record, status: 'failed' }, 3)).toBeUndefined();
        expect(await store.get(record.id)).toMatchObject({ version: 2, status: 'paid' });

        expect(await store.update(makeRecord(), 1)).toBeUndefined();
      });

      it('hands out frozen records: no caller can change stored state except through update', async () => {
        const record = makeRecord({ attempts: [attempt('walleot', 'w_copy')] });
        await store.insert(record);
        const subject = record.binding.subject;
        // Whatever a caller does to what it passed in (parts of it may now be frozen too)...
        attemptChange(() => {
          record.description = 'mutated input';
        });
        attemptChange(() => {
          record.attempts[0]!.status = 'paid';
        });

        const read = (await other.get(record.id))!;
        expectDeeplyFrozen(read);
        // ...or to what it read: refused outright.
        expect(() => {
          read.binding.amount = 1;
        }).toThrow(TypeError);
        expect(() => read.attempts.push(attempt('stripe', 'cs_copy'))).toThrow(TypeError);

        const written = (await store.update({ ...read, description: 'v2', attempts: [] }, 1))!;
        expectDeeplyFrozen(written);
        expect(() => written.runErrors.push('mutated result')).toThrow(TypeError);

        const stored = await other.get(record.id);
        expectDeeplyFrozen(stored!);
        expect(stored).toMatchObject({ version: 2, description: 'v2', attempts: [], runErrors: [] });
        expect(stored?.binding).toEqual({ ...record.binding, subject });
        const done = await store.update(
          {
            ...stored!,
            status: 'paid',
            run: 'done',
            result: { result: { content: [{ type: 'text', text: 'ok' }] }, completedAt: Date.now() },
          },
          2,
        );
        expectDeeplyFrozen(done!);
        expectDeeplyFrozen((await other.get(record.id))!);
      });

      it('refuses an invalid record or version with a typed error and stores nothing', async () => {
        const bad = makeRecord({ binding: { ...makeRecord().binding, amount: 0.25 } });
        await expect(store.insert(bad)).rejects.toMatchObject({ code: 'store_invalid_record' });
        expect(await store.get(bad.id)).toBeUndefined();

        const record = makeRecord();
        await store.insert(record);
        await expect(store.update(record, 0)).rejects.toMatchObject({ code: 'store_invalid_version' });
        await expect(store.update({ ...record, status: 'bogus' as 'paid' }, 1)).rejects.toMatchObject({
          code: 'store_invalid_record',
        });
        expect(await store.get(record.id)).toMatchObject({ version: 1, status: 'pending' });
      });
    });

    describe('indexes', () => {
      it('finds the newest intent of a binding; an update of an older one does not take it back', async () => {
        const older = makeRecord();
        const key = bindingKey(older.binding);
        await store.insert(older);
        expect((await other.findByBinding(key))?.id).toBe(older.id);

        const newer = makeRecord({ binding: older.binding });
        await other.insert(newer);
        expect((await store.findByBinding(key))?.id).toBe(newer.id);

        await store.update({ ...older, status: 'expired' }, 1);
        expect((await store.findByBinding(key))?.id).toBe(newer.id);
        expect(await store.findByBinding(bindingKey({ ...older.binding, amount: 26 }))).toBeUndefined();
      });

      it('finds an intent by any of its provider payments, including ones added by an update', async () => {
        const record = makeRecord({ attempts: [attempt('walleot', 'w_1')] });
        await store.insert(record);
        expect((await other.findByPayment('walleot', 'w_1'))?.id).toBe(record.id);
        expect(await other.findByPayment('stripe', 'cs_1')).toBeUndefined();

        const updated = await other.update(
          { ...record, attempts: [...record.attempts, attempt('stripe', 'cs_1')] },
          1,
        );
        expect(updated?.version).toBe(2);
        expect(await store.findByPayment('stripe', 'cs_1')).toEqual(updated);
        expect(await store.findByPayment('walleot', 'w_1')).toEqual(updated);
        // The provider is part of the key: the same payment id at another provider is someone else's.
        expect(await store.findByPayment('walleot', 'cs_1')).toBeUndefined();
        expect(await store.findByPayment('stripe', 'w_1')).toBeUndefined();
      });

      it('inserts under a binding only while it still points where the caller saw it', async () => {
        const first = makeRecord();
        expect(await store.insert(first, { bindingOwner: null })).toEqual(INSERTED);
        // Someone who saw the binding free is too late now, on any instance; nothing is stored.
        const late = makeRecord({ binding: first.binding });
        expect(await other.insert(late, { bindingOwner: null })).toEqual(TAKEN);
        expect(await store.get(late.id)).toBeUndefined();
        expect((await store.findByBinding(bindingKey(first.binding)))?.id).toBe(first.id);
        // Someone who saw `first` may replace it.
        const next = makeRecord({ binding: first.binding });
        expect(await other.insert(next, { bindingOwner: first.id })).toEqual(INSERTED);
        expect((await store.findByBinding(bindingKey(first.binding)))?.id).toBe(next.id);
        // An index entry whose intent has expired counts as free.
        const short = makeRecord({ expiresAt: Date.now() + 100 });
        await store.insert(short);
        await new Promise((r) => setTimeout(r, 250));
        expect(await other.insert(makeRecord({ binding: short.binding }), { bindingOwner: null })).toEqual(
          INSERTED,
        );
      });

      it('lets exactly one of 30 concurrent openers of one binding in, across instances', async () => {
        const binding = makeRecord().binding;
        const results = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            (i % 2 === 0 ? store : other).insert(makeRecord({ binding }), { bindingOwner: null }),
          ),
        );
        expect(results.filter((r) => r.kind === 'inserted')).toHaveLength(1);
        expect(results.filter((r) => r.kind === 'taken')).toHaveLength(29);
      });
    });

    describe('open limits per subject', () => {
      const limits = { openPerSubject: 3, openArgumentBytesPerSubject: 1024 * 1024 };
      const openOf = (subject: string, extra: Partial<IntentRecord> = {}) => {
        const base = makeRecord();
        return makeRecord({ binding: { ...base.binding, subject, argsHash: randomUUID() }, ...extra });
      };

      it('refuses an open intent past the limit, counts only open ones, and frees a slot when one is paid', async () => {
        const subject = `limited ${randomUUID()}`;
        const opened = [openOf(subject), openOf(subject), openOf(subject)];
        for (const [i, record] of opened.entries()) {
          expect(await (i % 2 === 0 ? store : other).insert(record, { limits })).toEqual(INSERTED);
        }
        const refused = openOf(subject);
        expect(await other.insert(refused, { limits })).toEqual({
          kind: 'limit',
          what: 'open',
          open: 3,
          bytes: 3 * refused.argsJson.length,
          limit: 3,
        });
        expect(await store.get(refused.id)).toBeUndefined();
        // A refused open leaves nothing behind, its binding index included.
        expect(await other.findByBinding(bindingKey(refused.binding))).toBeUndefined();
        // Other subjects are not affected, and a record that is not open does not count.
        expect(await store.insert(openOf(`someone else ${randomUUID()}`), { limits })).toEqual(INSERTED);
        expect(await store.insert(openOf(subject, { status: 'paid' }), { limits })).toEqual(INSERTED);
        // Paid (or canceled, failed, expired): no longer open.
        await other.update({ ...opened[0]!, status: 'paid' }, 1);
        expect(await store.insert(openOf(subject), { limits })).toEqual(INSERTED);
        expect((await store.insert(openOf(subject), { limits })).kind).toBe('limit');
        await store.update({ ...opened[1]!, status: 'canceled' }, 1);
        expect(await other.insert(openOf(subject), { limits })).toEqual(INSERTED);
        // Without limits nothing is counted against.
        expect(await other.insert(openOf(subject))).toEqual(INSERTED);
      });

      it('bounds the argument bytes a subject holds in open intents', async () => {
        const subject = `bytes ${randomUUID()}`;
        const big = (n: number) => openOf(subject, { argsJson: JSON.stringify({ data: 'x'.repeat(n) }) });
        const bytesLimits = { openPerSubject: 100, openArgumentBytesPerSubject: 1000 };
        const first = big(400);
        expect(await store.insert(first, { limits: bytesLimits })).toEqual(INSERTED);
        expect(await other.insert(big(400), { limits: bytesLimits })).toEqual(INSERTED);
        expect(await store.insert(big(400), { limits: bytesLimits })).toMatchObject({
          kind: 'limit',
          what: 'bytes',
          open: 2,
          bytes: 2 * first.argsJson.length,
          limit: 1000,
        });
        expect(await store.insert(big(50), { limits: bytesLimits })).toEqual(INSERTED);
      });

      it('stops counting an intent when it expires, or when its open time (openMs) is over', async () => {
        const subject = `expiring ${randomUUID()}`;
        const one = { openPerSubject: 1, openArgumentBytesPerSubject: 1024 * 1024 };
        const short = openOf(subject, { expiresAt: Date.now() + 100 });
        expect(await store.insert(short, { limits: one })).toEqual(INSERTED);
        expect((await other.insert(openOf(subject), { limits: one })).kind).toBe('limit');
        await waitPast(short.expiresAt);
        const long = openOf(subject);
        expect(await other.insert(long, { limits: one, openMs: 100 })).toEqual(INSERTED);
        const until = Date.now() + 100;
        expect((await store.insert(openOf(subject), { limits: one })).kind).toBe('limit');
        await waitPast(until);
        // An update of it (still open) does not count it again.
        expect(await store.update({ ...long, status: 'unknown' }, 1)).toBeDefined();
        expect(await store.insert(openOf(subject), { limits: one })).toEqual(INSERTED);
        // The intent itself lives on: only its place in the count ended.
        expect((await store.get(long.id))?.id).toBe(long.id);
      });

      it('lets exactly the limit in when 30 opens of one subject race, across instances', async () => {
        const subject = `racing ${randomUUID()}`;
        const five = { openPerSubject: 5, openArgumentBytesPerSubject: 1024 * 1024 };
        const results = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            (i % 2 === 0 ? store : other).insert(openOf(subject), { limits: five }),
          ),
        );
        expect(results.filter((r) => r.kind === 'inserted')).toHaveLength(5);
        expect(results.filter((r) => r.kind === 'limit')).toHaveLength(25);
      });
    });

    describe('run leases', () => {
      it('are held by one owner at a time, renewed and given back only by their owner', async () => {
        const { id } = makeRecord();
        expect(await store.acquireLease(id, 'a', 60_000)).toEqual({ kind: 'acquired' });
        const busy = await other.acquireLease(id, 'b', 60_000);
        expect(busy.kind).toBe('busy');
        expect(busy.kind === 'busy' && busy.remainingMs > 0 && busy.remainingMs <= 60_000).toBe(true);
        // The owner taking it again renews it.
        expect(await other.acquireLease(id, 'a', 60_000)).toEqual({ kind: 'acquired' });
        expect(await store.renewLease(id, 'a', 60_000)).toBe(true);
        expect(await store.renewLease(id, 'b', 60_000)).toBe(false);
        await other.releaseLease(id, 'b'); // not b's: nothing happens
        expect((await store.acquireLease(id, 'b', 60_000)).kind).toBe('busy');
        await other.releaseLease(id, 'a');
        expect(await store.acquireLease(id, 'b', 60_000)).toEqual({ kind: 'acquired' });
        expect(await other.renewLease(id, 'a', 60_000)).toBe(false);
        await expect(store.acquireLease(id, 'c', 0)).rejects.toMatchObject({ code: 'store_invalid_ttl' });
      });

      it("run out on the store's clock when not renewed, and one of many racing owners gets each", async () => {
        const { id } = makeRecord();
        expect(await store.acquireLease(id, 'a', 100)).toEqual({ kind: 'acquired' });
        const until = Date.now() + 100;
        expect((await other.acquireLease(id, 'b', 100)).kind).toBe('busy');
        await waitPast(until);
        expect(await store.renewLease(id, 'a', 100)).toBe(false);
        const racers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? store : other).acquireLease(id, `r${i}`, 60_000),
          ),
        );
        expect(racers.filter((r) => r.kind === 'acquired')).toHaveLength(1);
      });
    });

    describe('refunds to settle', () => {
      it('keeps noted refunds, oldest first, for every instance, until dropped', async () => {
        const [a, b, c] = [makeRecord(), makeRecord(), makeRecord()];
        for (const r of [a, b, c]) expect(await store.insert(r)).toEqual(INSERTED);
        expect(await other.refundsToSettle!(10)).toEqual([]);
        await store.noteRefund!(a.id);
        await sleep(2);
        await other.noteRefund!(b.id);
        await sleep(2);
        await store.noteRefund!(c.id);
        expect(await other.refundsToSettle!(10)).toEqual([a.id, b.id, c.id]);
        expect(await store.refundsToSettle!(2)).toEqual([a.id, b.id]);
        await other.dropRefund!(b.id);
        // Dropping one that is not noted changes nothing.
        await store.dropRefund!(b.id);
        expect(await store.refundsToSettle!(10)).toEqual([a.id, c.id]);
      });
    });

    describe('expiry', () => {
      it('drops a record and its indexes after its expiresAt', async () => {
        const record = makeRecord({ attempts: [attempt('walleot', 'w_short')], expiresAt: Date.now() + 100 });
        expect(await store.insert(record)).toEqual(INSERTED);
        await waitPast(record.expiresAt);
        expect(await store.get(record.id)).toBeUndefined();
        expect(await other.get(record.id)).toBeUndefined();
        expect(await store.findByBinding(bindingKey(record.binding))).toBeUndefined();
        expect(await store.findByPayment('walleot', 'w_short')).toBeUndefined();
        // Gone means gone: the id can be used again.
        expect(await store.insert({ ...record, expiresAt: Date.now() + 60_000 })).toEqual(INSERTED);
      });

      it('follows an update that moves expiresAt, indexes included', async () => {
        const record = makeRecord({ attempts: [attempt('walleot', 'w_moved')] });
        await store.insert(record);
        expect(await store.findByPayment('walleot', 'w_moved')).toBeDefined();

        const expiresAt = Date.now() + 100;
        expect(
          await other.update(
            { ...record, attempts: [...record.attempts, attempt('stripe', 'cs_moved')], expiresAt },
            1,
          ),
        ).toBeDefined();
        await waitPast(expiresAt);
        expect(await store.get(record.id)).toBeUndefined();
        expect(await store.findByBinding(bindingKey(record.binding))).toBeUndefined();
        expect(await store.findByPayment('walleot', 'w_moved')).toBeUndefined();
        expect(await store.findByPayment('stripe', 'cs_moved')).toBeUndefined();
      });

      it('treats a record written already expired as gone, without taking over its binding', async () => {
        const live = makeRecord();
        await store.insert(live);
        const stale = makeRecord({ binding: live.binding, expiresAt: Date.now() - 1_000 });
        expect(await store.insert(stale)).toEqual(INSERTED);
        expect(await store.get(stale.id)).toBeUndefined();
        expect((await store.findByBinding(bindingKey(live.binding)))?.id).toBe(live.id);
      });

      it('expires remembered choices', async () => {
        await store.setChoice('alice', 'stripe', 60_000);
        expect(await other.getChoice('alice')).toBe('stripe');
        await other.setChoice('alice', 'walleot', 60_000);
        expect(await store.getChoice('alice')).toBe('walleot');
        expect(await store.getChoice('bob')).toBeUndefined();

        const until = Date.now() + 100;
        await store.setChoice('carol', 'stripe', 100);
        await waitPast(until);
        expect(await other.getChoice('carol')).toBeUndefined();
        await expect(store.setChoice('dave', 'stripe', 0)).rejects.toMatchObject({
          code: 'store_invalid_ttl',
        });
      });

      it('marks an event once, and again only after the mark expired', async () => {
        expect(await store.markEvent('evt_long', 60_000)).toBe(true);
        expect(await other.markEvent('evt_long', 60_000)).toBe(false);
        expect(await store.markEvent('evt_long', 60_000)).toBe(false);

        const until = Date.now() + 100;
        expect(await store.markEvent('evt_short', 100)).toBe(true);
        await waitPast(until);
        expect(await other.markEvent('evt_short', 60_000)).toBe(true);
        await expect(store.markEvent('evt_bad', Number.NaN)).rejects.toMatchObject({
          code: 'store_invalid_ttl',
        });
      });
    });

    describe('concurrency', () => {
      it('marks an event true for exactly one of 50 concurrent callers', async () => {
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? store : other).markEvent('evt_race', 60_000)),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      it('lets exactly one of 200 concurrent compare-and-sets on one version win', async () => {
        const record = makeRecord();
        await store.insert(record);
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            (i % 2 === 0 ? store : other).update({ ...record, description: `writer ${i}` }, 1),
          ),
        );
        const winners = results.filter((r) => r !== undefined);
        expect(winners).toHaveLength(1);
        expect(await store.get(record.id)).toEqual(winners[0]);
        expect(winners[0]).toMatchObject({ version: 2 });
      });

      it('loses no increment when 50 workers run compare-and-set loops on one record', async () => {
        const record = makeRecord();
        await store.insert(record);
        const tries = await Promise.all(
          Array.from({ length: 50 }, (_, i) => incrementFence(i % 2 === 0 ? store : other, record.id)),
        );
        expect(await other.get(record.id)).toMatchObject({ fence: 50, version: 51 });
        // The loops really did collide (otherwise this would not test the compare-and-set).
        expect(tries.some((n) => n > 1)).toBe(true);
      });
    });

    describe('status changes', () => {
      it('reach every subscriber on every instance', async () => {
        const here = recorder(store);
        const there = recorder(other);
        await untilSubscribed(store, [store, other]);
        await untilSubscribed(other, [store, other]);

        const change: StatusChange = { intentId: `pi_${randomUUID()}`, status: 'paid', version: 3 };
        await store.publish(change);
        await other.publish({ ...change, status: 'refunded', version: 4 });
        await eventually(() => here.of(change.intentId).length === 2, 'delivery here');
        await eventually(() => there.of(change.intentId).length === 2, 'delivery there');
        const both = [change, { ...change, status: 'refunded', version: 4 }];
        if (ctx.orderedAcrossInstances === false) {
          const byVersion = (list: StatusChange[]) => [...list].sort((a, b) => a.version - b.version);
          expect(byVersion(here.of(change.intentId))).toEqual(both);
          expect(byVersion(there.of(change.intentId))).toEqual(both);
        } else {
          expect(here.of(change.intentId)).toEqual(both);
          expect(there.of(change.intentId)).toEqual(here.of(change.intentId));
        }
        await expect(store.publish({ intentId: '', status: 'paid', version: 1 })).rejects.toMatchObject({
          code: 'store_invalid_change',
        });
      });

      it('stops delivering to a listener once it unsubscribed', async () => {
        const leaving = recorder(other);
        const staying = recorder(other);
        await untilSubscribed(store, [other]);

        const first = `pi_${randomUUID()}`;
        await store.publish({ intentId: first, status: 'pending', version: 1 });
        await eventually(() => leaving.of(first).length === 1, 'first delivery');

        leaving.unsubscribe();
        leaving.unsubscribe(); // twice is harmless
        const second = `pi_${randomUUID()}`;
        await store.publish({ intentId: second, status: 'paid', version: 2 });
        // Both listeners sit on the same delivery path: once `staying` has it, `leaving` would have too.
        await eventually(() => staying.of(second).length === 1, 'second delivery');
        expect(leaving.of(second)).toEqual([]);
      });

      it('keeps delivering to the others when a listener throws', async () => {
        let thrown = 0;
        other.subscribe(() => {
          thrown += 1;
          throw new Error('listener bug');
        });
        other.subscribe(async () => {
          throw new Error('async listener bug');
        });
        const healthy = recorder(other);
        await untilSubscribed(store, [other]);

        const intentId = `pi_${randomUUID()}`;
        await store.publish({ intentId, status: 'paid', version: 2 });
        await store.publish({ intentId, status: 'refunded', version: 3 });
        await eventually(() => healthy.of(intentId).length === 2, 'delivery past the throwing listener');
        expect(thrown).toBeGreaterThanOrEqual(2);
      });

      it('gives each listener its own copy of a change', async () => {
        const intentId = `pi_${randomUUID()}`;
        other.subscribe((change) => {
          change.status = 'failed';
        });
        const healthy = recorder(other);
        await untilSubscribed(store, [other]);
        await store.publish({ intentId, status: 'paid', version: 2 });
        await eventually(() => healthy.of(intentId).length === 1, 'delivery');
        expect(healthy.of(intentId)[0]?.status).toBe('paid');
      });
    });

    describe('close', () => {
      it('closes idempotently, ends delivery, and refuses new subscriptions', async () => {
        const before = recorder(store);
        await untilSubscribed(other, [store]);
        await store.close();
        await store.close();
        expect(() => store.subscribe(() => {})).toThrow(expect.objectContaining({ code: 'store_closed' }));

        const intentId = `pi_${randomUUID()}`;
        if (ctx.other === undefined) {
          // One instance: publishing still works and reaches nobody.
          await store.publish({ intentId, status: 'paid', version: 2 });
        } else {
          const watcher = recorder(ctx.other);
          await untilSubscribed(ctx.other, [ctx.other]);
          await ctx.other.publish({ intentId, status: 'paid', version: 2 });
          // Redis hands a message to every subscribed connection at once: had the closed one still
          // listened, it would have it by now.
          await eventually(() => watcher.of(intentId).length === 1, 'delivery to the open instance');
        }
        expect(before.of(intentId)).toEqual([]);
        // Data operations do not depend on the subscription.
        const record = makeRecord();
        expect(await other.insert(record)).toEqual(INSERTED);
        expect((await other.get(record.id))?.id).toBe(record.id);
      });
    });

    describe('usage counters and ledger', () => {
      const usage = (s: PaymentStore) => {
        if (!isUsageStore(s)) throw new Error('store has no usage counters');
        return s;
      };
      const day = (at: number) => {
        const start = at - (at % 86_400_000);
        return { kind: 'fixed' as const, start, end: start + 86_400_000 };
      };

      it('reserves on every counter or none, refuses the unit that would pass a limit, and releases once', async () => {
        const scope = `user:${randomUUID()}`;
        const at = Date.now();
        const spend = (add: number) => ({ key: 'spend:USD:day', add, limit: 50, window: day(at) });
        const calls = { key: 'calls:day', add: 1, limit: 3, window: day(at) };
        expect(await usage(store).reserveUsage({ scope, id: 'a', at, counters: [spend(25), calls] })).toEqual(
          {
            kind: 'reserved',
          },
        );
        // Reaching the limit exactly is allowed; a repeat of a held id changes nothing.
        expect(await usage(other).reserveUsage({ scope, id: 'b', at, counters: [spend(25), calls] })).toEqual(
          {
            kind: 'reserved',
          },
        );
        expect(await usage(other).reserveUsage({ scope, id: 'b', at, counters: [spend(25), calls] })).toEqual(
          {
            kind: 'reserved',
          },
        );
        expect(await usage(store).reserveUsage({ scope, id: 'c', at, counters: [calls, spend(1)] })).toEqual({
          kind: 'over',
          key: 'spend:USD:day',
          used: 50,
          limit: 50,
          resetsAt: day(at).end,
        });
        // The refused reservation added nothing to the calls counter either.
        expect(await usage(store).reserveUsage({ scope, id: 'd', at, counters: [calls] })).toEqual({
          kind: 'reserved',
        });
        expect(await usage(store).reserveUsage({ scope, id: 'e', at, counters: [calls] })).toMatchObject({
          kind: 'over',
          used: 3,
        });
        expect(await usage(other).releaseUsage(scope, 'a')).toBe(true);
        expect(await usage(store).releaseUsage(scope, 'a')).toBe(false);
        expect(await usage(store).reserveUsage({ scope, id: 'f', at, counters: [spend(25)] })).toEqual({
          kind: 'reserved',
        });
        // Another scope has counters of its own.
        expect(
          await usage(store).reserveUsage({ scope: `${scope}-2`, id: 'a', at, counters: [spend(50)] }),
        ).toEqual({ kind: 'reserved' });
      });

      it("keeps each payer's counters apart, also for payers whose ids fall in one hash slot", async () => {
        // Two payers whose slot tags are equal (Redis keeps a payer's keys in its slot's hash tag).
        const first = `user:${randomUUID()}`;
        let second = '';
        for (let i = 0; second === ''; i++)
          if (subjectSlot(`user:slotmate-${i}`) === subjectSlot(first)) second = `user:slotmate-${i}`;
        const at = Date.now();
        const spend = { key: 'spend:USD:day', add: 50, limit: 50, window: day(at) };
        expect(
          await usage(store).reserveUsage({ scope: first, id: 'same-id', at, counters: [spend] }),
        ).toEqual({
          kind: 'reserved',
        });
        // The first payer's whole budget is spent; the second's is untouched, even under the same id.
        expect(
          await usage(other).reserveUsage({ scope: second, id: 'same-id', at, counters: [spend] }),
        ).toEqual({ kind: 'reserved' });
        expect(
          await usage(store).reserveUsage({ scope: second, id: 'another', at, counters: [spend] }),
        ).toMatchObject({ kind: 'over', used: 50 });
        // Giving one back frees that payer's budget only.
        expect(await usage(store).releaseUsage(second, 'same-id')).toBe(true);
        expect(await usage(store).releaseUsage(second, 'same-id')).toBe(false);
        expect(
          await usage(store).reserveUsage({ scope: first, id: 'third', at, counters: [spend] }),
        ).toMatchObject({ kind: 'over', used: 50 });
      });

      it('a new fixed period starts from zero; a rolling window frees budget as reservations age out', async () => {
        const scope = `user:${randomUUID()}`;
        const at = Date.now();
        const today = day(at);
        const tomorrow = { kind: 'fixed' as const, start: today.end, end: today.end + 86_400_000 };
        const c = (window: typeof today) => ({ key: 'calls:day', add: 1, limit: 1, window });
        expect(await usage(store).reserveUsage({ scope, id: 'a', at, counters: [c(today)] })).toEqual({
          kind: 'reserved',
        });
        expect((await usage(store).reserveUsage({ scope, id: 'b', at, counters: [c(today)] })).kind).toBe(
          'over',
        );
        expect(
          await usage(store).reserveUsage({ scope, id: 'b', at: today.end, counters: [c(tomorrow)] }),
        ).toEqual({
          kind: 'reserved',
        });
        const rolling = {
          key: 'calls:r1000',
          add: 1,
          limit: 1,
          window: { kind: 'rolling' as const, ms: 1000 },
        };
        expect(await usage(store).reserveUsage({ scope, id: 'r1', at, counters: [rolling] })).toEqual({
          kind: 'reserved',
        });
        expect(
          await usage(other).reserveUsage({ scope, id: 'r2', at: at + 999, counters: [rolling] }),
        ).toEqual({
          kind: 'over',
          key: 'calls:r1000',
          used: 1,
          limit: 1,
          resetsAt: at + 1000,
        });
        expect(
          await usage(other).reserveUsage({ scope, id: 'r2', at: at + 1000, counters: [rolling] }),
        ).toEqual({
          kind: 'reserved',
        });
      });

      it('keeps ledger entries per subject, in time order, from a time on', async () => {
        const subject = `user:${randomUUID()}`;
        const at = Date.now();
        const entry = (id: string, t: number) => ({
          id,
          at: t,
          subject,
          kind: 'paid' as const,
          intentId: 'pay_x',
          tool: 'report',
          amount: 2500,
          currency: 'USD',
        });
        expect(await usage(store).appendLedger(entry('x:payment', at), 60_000)).toBe(true);
        expect(await usage(other).appendLedger(entry('x:paid', at + 5), 60_000)).toBe(true);
        expect((await usage(store).listLedger(subject, 0, 10)).map((e) => e.id)).toEqual([
          'x:payment',
          'x:paid',
        ]);
        expect((await usage(other).listLedger(subject, at + 1, 10)).map((e) => e.id)).toEqual(['x:paid']);
        expect(await usage(store).listLedger(`${subject}-other`, 0, 10)).toEqual([]);
      });
    });
  });
}
