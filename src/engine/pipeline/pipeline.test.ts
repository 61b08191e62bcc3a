// Unit tests of the pipeline's steps: no MCP client, a scripted Interaction, an in-process provider.
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { engineRuntime } from '../../../test/support/engine-runtime.js';
import { FakeProvider } from '../../../test/support/fake-provider.js';
import type { PaymentProvider } from '../../core/provider.js';
import { argumentCodec, type PaidTool, type PaymentContext } from '../paid-tool.js';
import type { CallContext, Choice, Delivery, Interaction } from './context.js';
import { PaidCallPipeline } from './pipeline.js';

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

function runtime(providers: PaymentProvider[], timeouts = { paymentWaitMs: 50 }) {
  const { rt, store, close } = engineRuntime(providers, { timeouts });
  closers.push(close);
  return { rt, store, pipeline: new PaidCallPipeline(rt) };
}

function paidTool(runs: Array<{ args: unknown; payment: PaymentContext }>): PaidTool {
  const codec = argumentCodec('echo', { text: z.string() });
  return {
    name: 'echo',
    description: 'Echo',
    fixedPrice: { minor: 100, currency: 'USD' },
    hasInputSchema: true,
    hasOutputSchema: false,
    ...codec,
    handler: (args, _extra, payment) => {
      runs.push({ args, payment });
      return { content: [{ type: 'text', text: `echo ${String(args['text'])}` }] };
    },
  };
}

function context(interaction: Interaction, subject = 'session:s1'): CallContext {
  const signal = new AbortController().signal;
  return {
    subject,
    anonymous: subject.startsWith('session:'),
    client: { form: true, url: true },
    interaction,
    deadline: Date.now() + 10_000,
    signal,
    extra: { signal, requestId: 1 },
    progress: () => {},
  };
}

const scripted = (choice: Choice, delivery: Delivery = 'deferred'): Interaction => ({
  chooseMethod: async () => choice,
  deliver: async () => delivery,
});

describe('pay, then confirm', () => {
  it('a link, "not yet" before paying, then the tool runs once with a stable payment context', async () => {
    const provider = new FakeProvider();
    const { pipeline, store } = runtime([provider]);
    const runs: Array<{ args: unknown; payment: PaymentContext }> = [];
    const tool = paidTool(runs);
    const ctx = context(scripted({ kind: 'deferred' }));

    const first = await pipeline.call(tool, { text: 'hi' }, ctx);
    expect(first).toMatchObject({ kind: 'payment_required', reason: 'new' });
    if (first.kind !== 'payment_required') throw new Error('unreachable');
    const id = first.intent.id;

    const early = await pipeline.confirm(new Map([['echo', tool]]), id, undefined, ctx);
    expect(early).toMatchObject({ kind: 'payment_required', reason: 'not_yet' });
    expect(runs).toHaveLength(0);

    provider.setStatus(first.intent.attempts[0]!.paymentId, 'paid');
    const done = await pipeline.confirm(new Map([['echo', tool]]), id, undefined, ctx);
    expect(done).toMatchObject({ kind: 'ran', result: { content: [{ type: 'text', text: 'echo hi' }] } });
    const again = await pipeline.confirm(new Map([['echo', tool]]), id, undefined, ctx);
    expect(again.kind).toBe('ran');
    expect(runs).toEqual([
      {
        args: { text: 'hi' },
        payment: {
          paymentId: id,
          idempotencyKey: `payrouter_run_${id}`,
          amount: { minor: 100, currency: 'USD' },
          provider: 'fake',
          providerPaymentId: first.intent.attempts[0]!.paymentId,
        },
      },
    ]);
    expect((await store.get(id))?.run).toBe('done');
  });
});

describe('choose', () => {
  const two = () => [new FakeProvider({ id: 'a' }), new FakeProvider({ id: 'b' })];

  it('a choice nobody made creates no provider payment', async () => {
    const providers = two();
    const { pipeline } = runtime(providers);
    let creates = 0;
    for (const p of providers) {
      const create = p.createPayment.bind(p);
      p.createPayment = async () => {
        creates += 1;
        return create();
      };
    }
    const outcome = await pipeline.call(paidTool([]), { text: 'x' }, context(scripted({ kind: 'deferred' })));
    expect(outcome).toMatchObject({ kind: 'payment_required', reason: 'requires_method' });
    expect(creates).toBe(0);
  });

  it('declined and cancelled are told apart, and end the payment', async () => {
    const { pipeline } = runtime(two());
    const declined = await pipeline.call(
      paidTool([]),
      { text: 'd' },
      context(scripted({ kind: 'declined' })),
    );
    expect(declined).toMatchObject({ kind: 'stopped', by: 'declined', intent: { status: 'canceled' } });
    const cancelled = await pipeline.call(
      paidTool([]),
      { text: 'c' },
      context(scripted({ kind: 'cancelled' })),
    );
    expect(cancelled).toMatchObject({ kind: 'stopped', by: 'cancelled' });
  });

  it('an input-required interaction gets the question back as an outcome', async () => {
    const { pipeline } = runtime(two());
    const outcome = await pipeline.call(
      paidTool([]),
      { text: 'q' },
      context(scripted({ kind: 'input_required' })),
    );
    expect(outcome.kind).toBe('input_required');
    if (outcome.kind === 'input_required' && outcome.ask.kind === 'choose')
      expect(outcome.ask.eligible.map((e) => e.providerId)).toEqual(['a', 'b']);
  });
});

describe('who may confirm', () => {
  it('an anonymous payment is redeemable by its id; an authenticated one only by its payer', async () => {
    const provider = new FakeProvider();
    const { pipeline } = runtime([provider]);
    const tool = paidTool([]);
    const tools = new Map([['echo', tool]]);
    const anon = await pipeline.call(
      tool,
      { text: 'a' },
      context(scripted({ kind: 'deferred' }), 'session:one'),
    );
    const user = await pipeline.call(
      tool,
      { text: 'u' },
      context(scripted({ kind: 'deferred' }), 'user:alice'),
    );
    if (anon.kind !== 'payment_required' || user.kind !== 'payment_required') throw new Error('unreachable');
    provider.setStatus(anon.intent.attempts[0]!.paymentId, 'paid');
    provider.setStatus(user.intent.attempts[0]!.paymentId, 'paid');
    const other = context(scripted({ kind: 'deferred' }), 'session:two');
    expect((await pipeline.confirm(tools, anon.intent.id, undefined, other)).kind).toBe('ran');
    expect(await pipeline.confirm(tools, user.intent.id, undefined, other)).toEqual({
      kind: 'refused',
      reason: 'unknown_payment',
      detail: user.intent.id,
    });
  });
});

describe('confirm claims the run in the write that records paid', () => {
  async function paidPayment(subject: string) {
    const provider = new FakeProvider();
    const { pipeline, store, rt } = runtime([provider]);
    let paidEvents = 0;
    rt.hooks = {
      onPaid: () => {
        paidEvents += 1;
      },
    };
    const runs: Array<{ args: unknown; payment: PaymentContext }> = [];
    const tool = paidTool(runs);
    const ctx = context(scripted({ kind: 'deferred' }), subject);
    const first = await pipeline.call(tool, { text: 'hi' }, ctx);
    if (first.kind !== 'payment_required') throw new Error('expected a payment');
    provider.setStatus(first.intent.attempts[0]!.paymentId, 'paid');
    return { pipeline, store, tool, ctx, runs, id: first.intent.id, paidEvents: () => paidEvents };
  }

  it('paid and claimed in one write: the run needs no compare-and-set of its own to start', async () => {
    const { pipeline, store, tool, ctx, runs, id, paidEvents } = await paidPayment('session:claim');
    const before = (await store.get(id))!.version;
    const done = await pipeline.confirm(new Map([['echo', tool]]), id, undefined, ctx);
    expect(done).toMatchObject({ kind: 'ran' });
    expect(runs).toHaveLength(1);
    // paid + claim, then the result: two writes (three before: paid, claim, result).
    expect((await store.get(id))?.version).toBe(before + 2);
    expect(paidEvents()).toBe(1);
  });

  it('a retried call that finds its payment paid claims its run in that write too', async () => {
    const { pipeline, store, tool, ctx, runs, id, paidEvents } = await paidPayment('session:retry');
    const before = (await store.get(id))!.version;
    const done = await pipeline.call(tool, { text: 'hi' }, ctx);
    expect(done).toMatchObject({ kind: 'ran', intent: { id } });
    expect(runs).toEqual([expect.objectContaining({ args: { text: 'hi' } })]);
    expect((await store.get(id))?.version).toBe(before + 2);
    expect(paidEvents()).toBe(1);
  });

  it('a busy run lease: paid is written alone, and the run waits for the lease as before', async () => {
    const { pipeline, store, tool, ctx, runs, id, paidEvents } = await paidPayment('session:busy');
    const before = (await store.get(id))!.version;
    expect(await store.acquireLease(id, 'someone-else', 60)).toEqual({ kind: 'acquired' });
    const done = await pipeline.confirm(new Map([['echo', tool]]), id, undefined, ctx);
    expect(done).toMatchObject({ kind: 'ran' });
    expect(runs).toHaveLength(1);
    expect((await store.get(id))?.version).toBe(before + 3);
    expect(paidEvents()).toBe(1);
  });

  it('two confirmations at once of one paid payment: one read, one run, paid announced once', async () => {
    const { pipeline, tool, ctx, runs, id, paidEvents } = await paidPayment('session:twice');
    const tools = new Map([['echo', tool]]);
    const both = await Promise.all([
      pipeline.confirm(tools, id, undefined, ctx),
      pipeline.confirm(tools, id, undefined, { ...ctx, extra: { ...ctx.extra, requestId: 2 } }),
    ]);
    expect(both.map((o) => o.kind)).toEqual(['ran', 'ran']);
    expect(runs).toHaveLength(1);
    expect(paidEvents()).toBe(1);
  });
});
