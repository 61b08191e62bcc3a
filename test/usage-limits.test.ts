// Issue 15: spend caps, call quotas and free allowances enforced at open, operator refund and
// cancel, and the ledger, over real SDK clients and the sandbox stand-ins over HTTP.
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type LedgerEntry, memoryStore, type PaymentStore, type PayRouterOptions } from '../src/index.js';
import { checkoutUrlOf, connectClient, payAt, paymentOf, startWorld, textOf } from './support/paid-server.js';

let world: Awaited<ReturnType<typeof startWorld>>;
const closers: Array<() => Promise<void>> = [];

beforeEach(async () => {
  world = await startWorld();
});

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  await world.close();
});

const auth = (sub: string): AuthInfo => ({ token: `t-${sub}`, clientId: 'test', scopes: [], extra: { sub } });

async function payer(sub: string, options: Partial<PayRouterOptions>) {
  const { server, router } = world.makeServer({ flow: 'two_step', ...options });
  const { client, close } = await connectClient(server, { elicitation: 'none', authInfo: auth(sub) });
  closers.push(close);
  const call = (name: string, args: Record<string, unknown>) =>
    client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
  return { call, router };
}

const limitOf = (r: CallToolResult) => r._meta?.['payrouter/limit'] as Record<string, unknown> | undefined;
const receiptOf = (r: CallToolResult) =>
  r._meta?.['payrouter/receipt'] as Record<string, unknown> | undefined;
const walleotCreates = () =>
  world.sandbox.walleot.requests.entries.filter((r) => r.method === 'POST' && r.path.endsWith('/sessions'))
    .length;

/** A clock a test moves by hand. */
function handClock(start: number) {
  let now = start;
  return { clock: () => now, set: (t: number) => (now = t) };
}

describe('spend caps', () => {
  it('admits the call that reaches the cap and refuses the one that would pass it, with its own answer', async () => {
    const t = handClock(Date.UTC(2026, 11, 1, 12, 0, 0));
    const { call } = await payer('alice', {
      limits: { spend: [{ max: '0.50', currency: 'USD', per: 'day' }], clock: t.clock },
    });
    expect(paymentOf(await call('process_data', { data: 'a' }))?.status).toBe('pending');
    expect(paymentOf(await call('process_data', { data: 'b' }))?.status).toBe('pending');
    const creates = walleotCreates();
    const refused = await call('process_data', { data: 'c' });
    expect(refused.isError).toBe(true);
    expect(paymentOf(refused)).toBeUndefined();
    expect(limitOf(refused)).toEqual({
      kind: 'spend',
      scope: 'subject',
      tool: null,
      limit: '0.50',
      used: '0.50',
      currency: 'USD',
      period: 'day',
      window_ms: null,
      resets_at: '2026-12-02T00:00:00.000Z',
    });
    expect(textOf(refused)).toBe(
      'Spending limit reached: $0.50 of $0.50 per day (UTC) for you on this server, and this call would pass it. It resets at 2026-12-02T00:00:00.000Z (in 12 hours). This is a limit, not a payment request: nothing was created or charged.',
    );
    expect(walleotCreates()).toBe(creates);
    // Another payer has a budget of their own.
    const bob = await payer('bob', {
      limits: { spend: [{ max: '0.50', currency: 'USD', per: 'day' }], clock: t.clock },
    });
    expect(paymentOf(await bob.call('process_data', { data: 'a' }))?.status).toBe('pending');
  });

  it('refuses the one minor unit over, and a cap in another currency does not count', async () => {
    const { call } = await payer('carol', {
      limits: {
        spend: [
          { max: '0.49', currency: 'USD', per: { rollingMs: 3_600_000 } },
          { max: '1', currency: 'JPY', per: 'month' },
        ],
      },
    });
    expect(paymentOf(await call('process_data', { data: 'a' }))?.status).toBe('pending');
    const over = await call('process_data', { data: 'b' });
    expect(limitOf(over)).toMatchObject({
      kind: 'spend',
      limit: '0.49',
      used: '0.25',
      period: 'rolling',
      window_ms: 3_600_000,
    });
    // 500 JPY over a 1 JPY monthly cap.
    expect(limitOf(await call('status_now', {}))).toMatchObject({
      kind: 'spend',
      currency: 'JPY',
      limit: '1',
      used: '0',
    });
  });

  it('a new period gives the budget back at the boundary (injected clock)', async () => {
    const t = handClock(Date.UTC(2026, 11, 31, 23, 59, 59, 999));
    const { call } = await payer('dave', {
      limits: { spend: [{ max: '0.25', currency: 'USD', per: 'month' }], clock: t.clock },
    });
    expect(paymentOf(await call('process_data', { data: 'a' }))?.status).toBe('pending');
    expect(limitOf(await call('process_data', { data: 'b' }))).toMatchObject({
      resets_at: '2027-01-01T00:00:00.000Z',
    });
    t.set(Date.UTC(2027, 0, 1, 0, 0, 0, 0));
    expect(paymentOf(await call('process_data', { data: 'b' }))?.status).toBe('pending');
  });

  it('a per-tool cap and a global cap', async () => {
    const store = memoryStore();
    const connect = async (sub: string) => {
      const { server } = world.makeServer({
        store,
        flow: 'two_step',
        limits: { spend: [{ max: '0.50', currency: 'USD', per: 'day', scope: 'global' }] },
      });
      server.registerTool(
        'capped',
        {
          description: 'capped',
          inputSchema: { x: z.number() },
          price: { amount: '0.10', currency: 'USD' },
          providers: ['walleot'],
          limits: { calls: [{ max: 1, per: 'day' }] },
        },
        async () => ({ content: [{ type: 'text', text: 'ok' }] }),
      );
      const { client, close } = await connectClient(server, { elicitation: 'none', authInfo: auth(sub) });
      closers.push(close);
      return (name: string, args: Record<string, unknown>) =>
        client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
    };
    const erin = await connect('erin');
    const frank = await connect('frank');
    expect(paymentOf(await erin('capped', { x: 0 }))?.status).toBe('pending');
    expect(limitOf(await erin('capped', { x: 1 }))).toMatchObject({
      kind: 'calls',
      tool: 'capped',
      limit: '1',
      used: '1',
    });
    expect(paymentOf(await frank('process_data', { data: 'a' }))?.status).toBe('pending');
    // 0.10 + 0.25 held over all payers; erin's 0.25 more would make 0.60.
    const global = await erin('process_data', { data: 'z' });
    expect(limitOf(global)).toMatchObject({ kind: 'spend', scope: 'global', used: '0.35', limit: '0.50' });
    expect(textOf(global)).toContain('across all users of this server');
  });

  it('canceling an unpaid payment and refunding a paid one give the budget back; both are in the ledger', async () => {
    const entries: LedgerEntry[] = [];
    const { stripe, walleot } = world.sandbox.providers();
    const { call, router } = await payer('gina', {
      providers: [stripe, walleot],
      routing: { policy: 'first' },
      limits: { spend: [{ max: '25.00', currency: 'USD', per: 'day' }] },
      hooks: { onLedgerEntry: (e) => void entries.push(e) },
    });
    const first = paymentOf(await call('report', { topic: 'a' }))!;
    expect(first.status).toBe('pending');
    expect(limitOf(await call('report', { topic: 'b' }))).toMatchObject({ used: '25.00' });
    expect(await router.cancel(first.payment_id, { reason: 'support' })).toEqual({
      paymentId: first.payment_id,
      // Stripe cancels a Checkout Session by expiring it.
      status: 'expired',
      changed: true,
    });
    expect((await router.cancel(first.payment_id)).changed).toBe(false);

    const second = paymentOf(await call('report', { topic: 'b' }))!;
    await payAt(checkoutUrlOf(second));
    const ran = await call('confirm_payment', { payment_id: second.payment_id });
    expect(textOf(ran)).toBe('Report on b (1 pages)');
    expect(receiptOf(ran)).toMatchObject({
      payment_id: second.payment_id,
      amount: '25.00',
      currency: 'USD',
      free: false,
    });
    expect(limitOf(await call('report', { topic: 'c' }))).toMatchObject({ used: '25.00' });

    expect(await router.refund(second.payment_id, { reason: 'customer asked' })).toMatchObject({
      status: 'refunded',
      changed: true,
    });
    expect((await router.refund(second.payment_id)).changed).toBe(false);
    expect(paymentOf(await call('report', { topic: 'c' }))?.status).toBe('pending');

    // The ledger matches what the Stripe stand-in recorded.
    const ledger = await router.ledger.list({ subject: 'user:gina' });
    expect(ledger).toEqual(entries);
    const sessions = world.sandbox.stripe.listSessions();
    const payments = ledger.filter((e) => e.kind === 'payment');
    expect(payments.map((e) => e.providerPaymentId).sort()).toEqual(sessions.map((s) => s.id).sort());
    for (const p of payments) {
      const session = sessions.find((s) => s.id === p.providerPaymentId)!;
      expect(p.amount).toBe(session.amount_total);
      expect(p.currency).toBe(session.currency?.toUpperCase());
    }
    const refunds = ledger.filter((e) => e.kind === 'refund');
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({
      intentId: second.payment_id,
      amount: 2500,
      reason: 'customer asked',
      provider: 'stripe',
    });
    expect(world.sandbox.stripe.getRefunds(refunds[0]!.providerPaymentId!).map((r) => r.amount)).toEqual([
      2500,
    ]);
    expect(ledger.map((e) => e.kind)).toEqual([
      'payment',
      'cancel',
      'payment',
      'paid',
      'run',
      'refund',
      'payment',
    ]);
    expect(ledger.find((e) => e.kind === 'run')).toMatchObject({
      ok: true,
      amount: 2500,
      receipt: receiptOf(ran)?.['receipt'],
    });
    expect(JSON.stringify(ledger)).not.toContain('topic');
  });
});

describe('the ledger and onPaid', () => {
  it('record a payment when it is paid, even if its call never comes back, and once when it does', async () => {
    const entries: LedgerEntry[] = [];
    const paid: string[] = [];
    const { stripe, walleot } = world.sandbox.providers();
    const { call, router } = await payer('hana', {
      providers: [stripe, walleot],
      routing: { policy: 'first' },
      hooks: { onLedgerEntry: (e) => void entries.push(e), onPaid: (e) => void paid.push(e.intentId) },
    });
    const payment = paymentOf(await call('report', { topic: 'gone' }))!;
    await payAt(checkoutUrlOf(payment));
    // The payer pays and never calls back; the router learns it from the provider (a poll, a
    // webhook or the return page would do the same).
    expect(await router.checkPayment(payment.payment_id)).toBe('paid');
    expect(paid).toEqual([payment.payment_id]);
    expect(entries.map((e) => [e.kind, e.intentId])).toEqual([
      ['payment', payment.payment_id],
      ['paid', payment.payment_id],
    ]);
    expect(entries[1]).toMatchObject({ amount: 2500, currency: 'USD', provider: 'stripe' });
    // Asked again, nothing new is recorded; the call coming back at last runs and records its run only.
    await router.checkPayment(payment.payment_id);
    expect(textOf(await call('confirm_payment', { payment_id: payment.payment_id }))).toBe(
      'Report on gone (1 pages)',
    );
    expect(paid).toEqual([payment.payment_id]);
    expect(entries.map((e) => e.kind)).toEqual(['payment', 'paid', 'run']);
    expect(await router.ledger.list({ subject: 'user:hana' })).toEqual(entries);
  });
});

describe('free allowance', () => {
  it('runs the first calls free, once each and recorded, then asks for payment', async () => {
    const store: PaymentStore = memoryStore();
    const seen: unknown[] = [];
    const { server, router } = world.makeServer({
      store,
      flow: 'two_step',
      limits: { free: { calls: 2, per: 'day' } },
    });
    server.registerTool(
      'peek',
      { description: 'peek', price: { amount: '0.25', currency: 'USD' }, providers: ['walleot'] },
      async (extra) => {
        seen.push(extra.payment);
        return { content: [{ type: 'text', text: 'peeked' }] };
      },
    );
    const { client, close } = await connectClient(server, { elicitation: 'none', authInfo: auth('hana') });
    closers.push(close);
    const call = (name: string, args: Record<string, unknown>) =>
      client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
    const creates = walleotCreates();
    const one = await call('process_data', { data: 'x' });
    const two = await call('peek', {});
    expect(textOf(one)).toBe('Processed: x');
    expect(textOf(two)).toBe('peeked');
    expect(paymentOf(one)).toBeUndefined();
    expect(receiptOf(one)).toMatchObject({ amount: '0.00', currency: 'USD', free: true });
    expect(seen).toEqual([
      {
        paymentId: receiptOf(two)?.['payment_id'],
        idempotencyKey: `payrouter_run_${receiptOf(two)?.['payment_id']}`,
        amount: { minor: 0, currency: 'USD' },
        provider: 'free',
      },
    ]);
    expect(walleotCreates()).toBe(creates);
    expect(world.runsOf('process_data')).toBe(1);

    const third = await call('process_data', { data: 'x' });
    expect(paymentOf(third)?.status).toBe('pending');
    expect(walleotCreates()).toBe(creates + 1);
    expect(world.runsOf('process_data')).toBe(1);

    const ledger = await router.ledger.list({ subject: 'user:hana' });
    expect(ledger.map((e) => [e.kind, e.tool, e.amount])).toEqual([
      ['free', 'process_data', 0],
      ['run', 'process_data', 0],
      ['free', 'peek', 0],
      ['run', 'peek', 0],
      ['payment', 'process_data', 25],
    ]);
  });

  it("a tool's own allowance replaces the shared one, and a refund of a free call gives it back", async () => {
    const { server, router } = world.makeServer({
      flow: 'two_step',
      limits: { free: { calls: 5, per: 'day' } },
    });
    server.registerTool(
      'sample',
      {
        description: 'sample',
        price: { amount: '0.25', currency: 'USD' },
        providers: ['walleot'],
        limits: { free: { calls: 1, per: 'month' } },
      },
      async () => ({ content: [{ type: 'text', text: 'sampled' }] }),
    );
    const { client, close } = await connectClient(server, { elicitation: 'none', authInfo: auth('ivy') });
    closers.push(close);
    const call = (name: string) => client.callTool({ name, arguments: {} }) as Promise<CallToolResult>;
    const free = await call('sample');
    expect(textOf(free)).toBe('sampled');
    const second = await call('sample');
    expect(paymentOf(second)?.status, textOf(second)).toBe('pending');
    const id = String(receiptOf(free)?.['payment_id']);
    expect(await router.refund(id, { reason: 'test' })).toMatchObject({ status: 'refunded', changed: true });
    // The open payment of the same call would be resumed first: cancel it, and the call is free again.
    const pending = paymentOf(await call('sample'))!;
    expect((await router.cancel(pending.payment_id)).status).toBe('canceled');
    expect(textOf(await call('sample'))).toBe('sampled');
    expect(world.sandbox.walleot.requests.entries.length).toBeGreaterThan(0);
    const ledger = await router.ledger.list({ subject: 'user:ivy' });
    expect(ledger.filter((e) => e.kind === 'refund')).toMatchObject([
      { amount: 0, provider: 'free', reason: 'test' },
    ]);
  });
});
