// Unit tests of paidClaim: the run claim confirm_payment attaches to the write that records paid.
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { engineRuntime } from '../../test/support/engine-runtime.js';
import { FakeProvider, fakeIntent } from '../../test/support/fake-provider.js';
import { argumentCodec, type PaidTool } from './paid-tool.js';
import { paidClaim } from './run-once.js';

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

function setup() {
  const provider = new FakeProvider();
  const { rt: core, store, close } = engineRuntime([provider]);
  closers.push(close);
  const tool: PaidTool = {
    name: 'echo',
    description: 'Echo',
    fixedPrice: { minor: 100, currency: 'USD' },
    hasInputSchema: true,
    hasOutputSchema: false,
    ...argumentCodec('echo', { text: z.string().optional() }),
    handler: () => ({ content: [] }),
  };
  const signal = new AbortController().signal;
  return { provider, store, core, tool, extra: { signal, requestId: 1 } };
}

describe('paidClaim', () => {
  it('claims with the lease it took; a claim carried but never started gives its lease back', async () => {
    const { provider, store, core, tool, extra } = setup();
    const bound = fakeIntent(provider, 'pay_unit1');
    await store.insert(bound);
    const claim = paidClaim(core, tool, bound, extra);
    expect(await claim.take(bound)).toBe(true);
    expect(await store.acquireLease(bound.id, 'someone-else', 1000)).toMatchObject({ kind: 'busy' });
    const carried = claim.apply({ ...bound, status: 'paid' }, Date.now());
    expect(carried).toMatchObject({ fence: 1, next: { run: 'running', fence: 1 } });
    claim.claimed = { intent: carried!.next, fence: carried!.fence };
    await claim.dispose();
    expect(await store.acquireLease(bound.id, 'someone-else', 1000)).toEqual({ kind: 'acquired' });
    // Handed over once at most, and never after it was given back.
    expect(claim.start(bound.id)).toBeUndefined();
  });

  it('takes no lease for a call bound to other arguments, or for an intent with several attempts', async () => {
    const { provider, store, core, tool, extra } = setup();
    const intent = fakeIntent(provider, 'pay_unit2');
    await store.insert(intent);
    // The tool's price is not the one this payment was made for: the binding does not match.
    const repriced = { ...intent, binding: { ...intent.binding, amount: 250 } };
    expect(await paidClaim(core, tool, repriced, extra).take(repriced)).toBe(false);
    const two = { ...intent, attempts: [...intent.attempts, { ...intent.attempts[0]!, paymentId: 'other' }] };
    expect(await paidClaim(core, tool, two, extra).take(two)).toBe(false);
    expect(await store.acquireLease(intent.id, 'someone-else', 1000)).toEqual({ kind: 'acquired' });
  });
});
