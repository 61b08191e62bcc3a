import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { memoryStore } from '../src/store/index.js';
import { describeStoreContract, makeRecord, waitPast } from './support/store-contract.js';

describeStoreContract('memoryStore', async () => {
  const store = memoryStore();
  return { store, cleanup: () => store.close() };
});

/** The live heap after full collections (the flag is set at run time, so vitest needs no option). */
function heap(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('memoryStore', () => {
  it('when full, drops expired intents first, then ended ones, and never a paid or open one: it refuses instead', async () => {
    const store = memoryStore({ maxEntries: 3 });
    const paidUnrun = makeRecord({ status: 'paid', run: 'unused' });
    const open = makeRecord({ status: 'pending' });
    const soonGone = makeRecord({ status: 'pending', expiresAt: Date.now() + 50 });
    for (const r of [paidUnrun, open, soonGone]) expect(await store.insert(r)).toEqual({ kind: 'inserted' });
    // Full of intents still owed something: a new open is refused, nothing is evicted.
    expect(await store.insert(makeRecord())).toEqual({ kind: 'full' });
    await waitPast(soonGone.expiresAt);
    // The expired one makes room.
    const next = makeRecord();
    expect(await store.insert(next)).toEqual({ kind: 'inserted' });
    expect(await store.insert(makeRecord())).toEqual({ kind: 'full' });
    // An ended one (here: canceled) may go to make room; the paid and open ones stay.
    await store.update({ ...next, status: 'canceled' }, 1);
    const last = makeRecord();
    expect(await store.insert(last)).toEqual({ kind: 'inserted' });
    expect(await store.get(next.id)).toBeUndefined();
    for (const r of [paidUnrun, open, last]) expect((await store.get(r.id))?.id).toBe(r.id);
    // A paid intent whose result was delivered is ended too; one whose result is undelivered is not.
    await store.update({ ...paidUnrun, run: 'done', result: { result: {}, completedAt: 1 } }, 1);
    expect(await store.insert(makeRecord())).toEqual({ kind: 'full' });
    await store.update(
      { ...paidUnrun, run: 'done', resultDelivered: true, result: { result: {}, completedAt: 1 } },
      2,
    );
    expect(await store.insert(makeRecord())).toEqual({ kind: 'inserted' });
    expect(await store.get(paidUnrun.id)).toBeUndefined();
    await store.close();
  });

  it('hands out the very record it keeps (no copies), frozen', async () => {
    const store = memoryStore();
    const record = makeRecord();
    await store.insert(record);
    const a = await store.get(record.id);
    expect(await store.get(record.id)).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    const written = await store.update({ ...a!, status: 'paid' }, 1);
    expect(await store.get(record.id)).toBe(written);
    await store.close();
  });

  it("keeps a subject's newest 10,000 ledger entries in order, each id once, and drops them at retention", async () => {
    const store = memoryStore();
    const entry = (n: number, subject = 'user:ledger') => ({
      id: `pay_x:run:${n}`,
      at: 1_000 + n,
      subject,
      kind: 'run' as const,
      intentId: 'pay_x',
      tool: 'work',
      amount: 5,
      currency: 'USD',
      receipt: 'rcpt_x',
    });
    for (let n = 0; n < 12_500; n++) expect(await store.appendLedger(entry(n), 60_000)).toBe(true);
    // A repeated id is not written twice while it is kept.
    expect(await store.appendLedger(entry(12_499), 60_000)).toBe(false);
    const kept = await store.listLedger('user:ledger', 0, 20_000);
    expect(kept).toHaveLength(10_000);
    expect(kept[0]?.id).toBe('pay_x:run:2500');
    expect(kept.at(-1)?.id).toBe('pay_x:run:12499');
    // An entry dropped by the cap may be written again (its id is forgotten with it).
    expect(await store.appendLedger(entry(0), 60_000)).toBe(true);
    // since and limit, oldest first.
    expect((await store.listLedger('user:ledger', 1_000 + 12_000, 3)).map((e) => e.id)).toEqual([
      'pay_x:run:12000',
      'pay_x:run:12001',
      'pay_x:run:12002',
    ]);
    // Retention: a short-lived entry of another subject is gone after it, the others stay.
    expect(await store.appendLedger(entry(1, 'user:brief'), 20)).toBe(true);
    await waitPast(Date.now() + 30);
    expect(await store.listLedger('user:brief', 0, 10)).toEqual([]);
    expect(await store.appendLedger(entry(1, 'user:brief'), 20)).toBe(true);
    expect(await store.listLedger('user:ledger', 0, 20_000)).toHaveLength(10_000);
    await store.close();
  });

  it('bounds the ledger across payers too: past maxLedgerEntries the oldest entry of any payer goes first', async () => {
    const store = memoryStore({ maxLedgerEntries: 5 });
    const entry = (n: number) => ({
      id: `pay_${n}:payment`,
      at: 1_000 + n,
      subject: `session:s${n}`,
      kind: 'payment' as const,
      intentId: `pay_${n}`,
      tool: 'work',
      amount: 5,
      currency: 'USD',
      receipt: `rcpt_${n}`,
    });
    // One entry per payer, as many sessions each opening one payment would leave.
    for (let n = 0; n < 8; n++) expect(await store.appendLedger(entry(n), 60_000)).toBe(true);
    const kept: string[] = [];
    for (let n = 0; n < 8; n++)
      for (const e of await store.listLedger(`session:s${n}`, 0, 10)) kept.push(e.id);
    expect(kept).toEqual([
      'pay_3:payment',
      'pay_4:payment',
      'pay_5:payment',
      'pay_6:payment',
      'pay_7:payment',
    ]);
    // An entry dropped from the front of its payer's list by that payer's own cap or retention
    // is not counted twice: the bound stays exact.
    await store.appendLedger({ ...entry(7), id: 'pay_7:run:1', kind: 'run' }, 60_000);
    expect((await store.listLedger('session:s7', 0, 10)).map((e) => e.id)).toEqual([
      'pay_7:payment',
      'pay_7:run:1',
    ]);
    expect(await store.listLedger('session:s3', 0, 10)).toEqual([]);
    await store.close();
  });

  it('forgets the rolling-window reservations of payers who never come back', async () => {
    const store = memoryStore();
    const start = Date.UTC(2026, 11, 1);
    const hour = { kind: 'rolling' as const, ms: 3_600_000 };
    const before = heap();
    // 50,000 payers each spend once, then never return.
    for (let i = 0; i < 50_000; i++)
      await store.reserveUsage({
        scope: `user:idle${i}`,
        id: `pay_idle${i}`,
        at: start,
        counters: [{ key: 'spend:USD:rolling', add: 5, limit: 100, window: hour }],
      });
    const idle = heap() - before;
    expect(idle).toBeGreaterThan(5_000_000);
    // Two hours on, other payers keep the store busy: the idle payers' windows have long passed.
    for (let i = 0; i < 60_000; i++)
      await store.reserveUsage({
        scope: `user:busy${i % 10}`,
        id: `pay_busy${i}`,
        at: start + 7_200_000 + i,
        counters: [{ key: 'calls:rolling', add: 1, limit: 1_000_000, window: { kind: 'rolling', ms: 1 } }],
      });
    expect(heap() - before).toBeLessThan(idle / 4);
    await store.close();
  });

  it('holds no more for the ledger at its bound however many entries came and went', async () => {
    const store = memoryStore({ maxLedgerEntries: 1_000 });
    let n = 0;
    const append = async (count: number) => {
      for (let end = n + count; n < end; n++)
        await store.appendLedger(
          {
            id: `pay_${n}:run:1`,
            at: 1_000,
            subject: `session:s${n % 1_000}`,
            kind: 'run',
            intentId: `pay_${n}`,
            tool: 'work',
            amount: 5,
            currency: 'USD',
            receipt: `rcpt_${n}`,
          },
          3_600_000,
        );
    };
    await append(50_000);
    const atBound = heap();
    // Half a million more: each one in, the oldest of all out.
    await append(500_000);
    expect(heap() - atBound).toBeLessThan(1_000_000);
    expect(await store.listLedger('session:s7', 0, 10)).toHaveLength(1);
    await store.close();
  });

  it('refuses a maxLedgerEntries that is not a positive integer', () => {
    expect(() => memoryStore({ maxLedgerEntries: 0 })).toThrow(/maxLedgerEntries/);
  });

  it('refuses a maxEntries that is not a positive integer', () => {
    expect(() => memoryStore({ maxEntries: 0 })).toThrow(expect.objectContaining({ code: 'config_error' }));
    expect(() => memoryStore({ maxEntries: 1.5 })).toThrow(/maxEntries/);
  });

  it('leaves no timer that would keep the process alive', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    // Everything below settles in microtasks, so no other code can add or clear a timer meanwhile.
    const store = memoryStore();
    const record = makeRecord({ expiresAt: Date.now() + 50 });
    await store.insert(record);
    await store.update({ ...record, status: 'paid' }, 1);
    await store.get(record.id);
    await store.setChoice('alice', 'stripe', 50);
    await store.getChoice('alice');
    await store.markEvent('evt', 50);
    const off = store.subscribe(() => {});
    await store.publish({ intentId: record.id, status: 'paid', version: 2 });
    off();
    expect(timers()).toBe(before);
    await store.close();
  });

  it('reports a throwing listener to the logger', async () => {
    const warnings: string[] = [];
    const store = memoryStore({
      logger: { debug() {}, info() {}, warn: (message) => warnings.push(message), error() {} },
    });
    store.subscribe(() => {
      throw new Error('boom');
    });
    await store.publish({ intentId: 'pi_1', status: 'paid', version: 2 });
    expect(warnings).toEqual(['status listener failed']);
    await store.close();
  });
});
