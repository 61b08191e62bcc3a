// Unit tests of the status write path with a run claim attached (PaidClaim): the write that makes
// a payment paid also claims its run, or, when it cannot, behaves as without a claim.
import { describe, expect, it } from 'vitest';
import { FakeProvider, fakeIntent } from '../../../test/support/fake-provider.js';
import type { IntentRecord } from '../../core/intent/record.js';
import { claimRun } from '../../core/intent/transitions.js';
import { silentLogger } from '../../core/logger.js';
import { memoryStore } from '../../store/memory.js';
import type { PaymentStore } from '../../store/types.js';
import { applyProviderStateToStore, type PaidClaim } from './status-update.js';

/** A claim whose lease the test decides, counting what the write path asks of it. */
function testClaim(options: { lease?: boolean; claimable?: boolean } = {}) {
  const calls = { take: 0, apply: 0, release: 0 };
  const claim: PaidClaim = {
    async take() {
      calls.take += 1;
      return options.lease ?? true;
    },
    apply(next, now) {
      calls.apply += 1;
      if (options.claimable === false) return undefined;
      const { next: claimed, outcome } = claimRun(next, next.binding, 'owner-1', now);
      return claimed && outcome.kind === 'claimed' ? { next: claimed, fence: outcome.fence } : undefined;
    },
    async release() {
      calls.release += 1;
    },
  };
  return { claim, calls };
}

/** memoryStore counting its compare-and-set writes. */
function countingStore() {
  const store = memoryStore();
  const counts = { updates: 0 };
  const update = store.update.bind(store);
  store.update = (record: IntentRecord, version: number) => {
    counts.updates += 1;
    return update(record, version);
  };
  return { store, counts };
}

async function pendingIntent(store: PaymentStore, provider: FakeProvider, id: string) {
  const intent = fakeIntent(provider, id);
  await store.insert(intent);
  return (await store.get(id))!;
}

const paidState = (paymentId: string) => ({ paymentId, status: 'paid' as const, rawStatus: 'complete' });

describe('applyProviderStateToStore with a run claim', () => {
  it('the write that makes the payment paid claims the run: one write, paid announced once', async () => {
    const provider = new FakeProvider();
    const { store, counts } = countingStore();
    const known = await pendingIntent(store, provider, 'claim1');
    const { claim, calls } = testClaim();
    const announced: IntentRecord[] = [];
    const update = await applyProviderStateToStore(store, known.id, 'fake', paidState('pay_claim1'), {
      now: () => Date.now(),
      logger: silentLogger,
      known,
      claim,
      onPaid: async (intent) => {
        announced.push(intent);
      },
    });
    expect(counts.updates).toBe(1);
    expect(update).toMatchObject({ written: true, statusChanged: true });
    const stored = await store.get(known.id);
    expect(stored).toMatchObject({ status: 'paid', run: 'running', fence: 1, version: 2 });
    expect(stored?.lease).toEqual({ owner: 'owner-1', fence: 1 });
    expect(claim.claimed).toMatchObject({ fence: 1, intent: { version: 2, run: 'running' } });
    expect(announced.map((i) => i.version)).toEqual([2]);
    expect(calls).toEqual({ take: 1, apply: 1, release: 0 });
  });

  it('a busy lease: the payment is made paid without a claim, and no lease is given back', async () => {
    const provider = new FakeProvider();
    const { store } = countingStore();
    const known = await pendingIntent(store, provider, 'claim2');
    const { claim, calls } = testClaim({ lease: false });
    await applyProviderStateToStore(store, known.id, 'fake', paidState('pay_claim2'), {
      now: () => Date.now(),
      logger: silentLogger,
      known,
      claim,
    });
    expect(await store.get(known.id)).toMatchObject({ status: 'paid', run: 'unused', fence: 0 });
    expect(claim.claimed).toBeUndefined();
    expect(calls).toEqual({ take: 1, apply: 0, release: 0 });
  });

  it('another writer made it paid first: nothing is written, the lease goes back, no second announcement', async () => {
    const provider = new FakeProvider();
    const { store } = countingStore();
    const known = await pendingIntent(store, provider, 'claim3');
    // A webhook on another instance wrote paid after the caller's read.
    await applyProviderStateToStore(store, known.id, 'fake', paidState('pay_claim3'), {
      now: () => Date.now(),
      logger: silentLogger,
    });
    const { claim, calls } = testClaim();
    let announced = 0;
    const update = await applyProviderStateToStore(store, known.id, 'fake', paidState('pay_claim3'), {
      now: () => Date.now(),
      logger: silentLogger,
      known,
      claim,
      onPaid: async () => {
        announced += 1;
      },
    });
    expect(update).toMatchObject({ written: false, statusChanged: false });
    expect(await store.get(known.id)).toMatchObject({ status: 'paid', run: 'unused', version: 2 });
    expect(claim.claimed).toBeUndefined();
    expect(announced).toBe(0);
    expect(calls).toEqual({ take: 1, apply: 0, release: 1 });
  });

  it('a run that cannot be claimed: paid is written alone and the lease goes back', async () => {
    const provider = new FakeProvider();
    const { store } = countingStore();
    const known = await pendingIntent(store, provider, 'claim4');
    const { claim, calls } = testClaim({ claimable: false });
    await applyProviderStateToStore(store, known.id, 'fake', paidState('pay_claim4'), {
      now: () => Date.now(),
      logger: silentLogger,
      known,
      claim,
    });
    expect(await store.get(known.id)).toMatchObject({ status: 'paid', run: 'unused' });
    expect(claim.claimed).toBeUndefined();
    expect(calls).toEqual({ take: 1, apply: 1, release: 1 });
  });

  it('not paid, or paid for another amount: no lease is taken', async () => {
    const provider = new FakeProvider();
    const { store } = countingStore();
    const known = await pendingIntent(store, provider, 'claim5');
    const { claim, calls } = testClaim();
    const options = { now: () => Date.now(), logger: silentLogger, known, claim };
    await applyProviderStateToStore(
      store,
      known.id,
      'fake',
      { paymentId: 'pay_claim5', status: 'pending', rawStatus: 'open' },
      options,
    );
    await applyProviderStateToStore(
      store,
      known.id,
      'fake',
      { ...paidState('pay_claim5'), paid: { minor: 1, currency: 'USD' } },
      options,
    );
    expect((await store.get(known.id))?.status).toBe('pending');
    expect(calls).toEqual({ take: 0, apply: 0, release: 0 });
  });
});
