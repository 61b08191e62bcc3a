// Issue 11 items 4 and 7. With onToolError 'refund', the refund decision and the end of the failed
// run are one write: a confirm_payment racing in right after it cannot claim a run, so the payer is
// never both served and refunded. And the handler gets extra.payment with a key that is stable
// for the payment. Real SDK clients, the Stripe stand-in over HTTP.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { memoryStore, type PaymentStore, PayRouter } from '../src/index.js';
import type { PaymentProvider } from '../src/providers.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { connectClient, paymentOf, textOf } from './support/paid-server.js';

let sandbox: Sandbox;
const routers: PayRouter[] = [];
const closers: Array<() => Promise<void>> = [];

beforeEach(async () => {
  sandbox = await startSandbox();
});

afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
  await Promise.all(routers.splice(0).map((r) => r.close()));
  await sandbox.close();
});

interface Run {
  ok: boolean;
  payment: unknown;
}

async function clientOn(store: PaymentStore, runs: Run[], failFirst: boolean) {
  const server = new McpServer({ name: 'refunds', version: '1.0.0' });
  const router = new PayRouter(server, {
    providers: [sandbox.providers().stripe],
    store,
    flow: 'two_step',
    onToolError: 'refund',
    subject: () => 'rita',
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  routers.push(router);
  server.registerTool(
    'flaky',
    {
      description: 'Fails once',
      inputSchema: { n: z.number() },
      price: { amount: '25.00', currency: 'USD' },
    },
    async ({ n }, extra) => {
      const ok = !(failFirst && runs.length === 0);
      runs.push({ ok, payment: (extra as { payment?: unknown }).payment });
      if (!ok) throw new Error('the first run breaks');
      return { content: [{ type: 'text', text: `flaky ${n} ok` }] };
    },
  );
  const { client, close } = await connectClient(server, { elicitation: 'none' });
  closers.push(close);
  return (name: string, args: Record<string, unknown>) =>
    client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
}

const refunds = () =>
  sandbox.stripe.requests.entries.filter((r) => r.method === 'POST' && r.path === '/v1/refunds').length;

describe("onToolError: 'refund'", () => {
  it('a confirm racing the failing run cannot run the tool once the refund was chosen, and the payer is refunded once', async () => {
    const runs: Run[] = [];
    let race: (() => Promise<CallToolResult>) | undefined;
    let raced: CallToolResult | undefined;
    const base = memoryStore();
    // Right after the failed run is written back (before the refund is made), another confirm
    // of the same payment arrives.
    const store: PaymentStore = new Proxy(base, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (property === 'update') {
          return async (...args: Parameters<PaymentStore['update']>) => {
            const stored = await target.update(...args);
            const [record] = args;
            if (stored && race && record.runErrors.length === 1 && record.run !== 'running') {
              const go = race;
              race = undefined;
              raced = await go();
            }
            return stored;
          };
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const first = await clientOn(store, runs, true);
    const second = await clientOn(store, runs, true);
    const required = await first('flaky', { n: 1 });
    const paymentId = paymentOf(required)!.payment_id;
    const sessionId = (await base.get(paymentId))!.attempts.at(-1)!.paymentId;
    sandbox.stripe.pay(sessionId);
    race = () => second('confirm_payment', { payment_id: paymentId });

    const failed = await first('confirm_payment', { payment_id: paymentId });
    expect(raced).toBeDefined();
    // The racing confirm did not run the tool: only the failed run ever happened.
    expect(runs.map((r) => r.ok)).toEqual([false]);
    expect(raced!.isError).toBe(true);
    expect(textOf(raced!)).not.toContain('flaky 1 ok');
    expect(paymentOf(failed)).toMatchObject({ status: 'refunded' });
    expect(refunds()).toBe(1);
    expect(await base.get(paymentId)).toMatchObject({ status: 'refunded', run: 'refunded' });
    // And nothing runs for it later either.
    const later = await second('confirm_payment', { payment_id: paymentId });
    expect(textOf(later)).not.toContain('flaky 1 ok');
    expect(runs).toHaveLength(1);
  });

  it('the handler gets extra.payment, with an idempotency key that stays the same across runs of one payment', async () => {
    const runs: Run[] = [];
    const store = memoryStore();
    const call = await clientOn(store, runs, false);
    const required = await call('flaky', { n: 2 });
    const paymentId = paymentOf(required)!.payment_id;
    const sessionId = (await store.get(paymentId))!.attempts.at(-1)!.paymentId;
    sandbox.stripe.pay(sessionId);
    const done = await call('confirm_payment', { payment_id: paymentId });
    expect(textOf(done)).toBe('flaky 2 ok');
    expect(runs[0]?.payment).toEqual({
      paymentId,
      idempotencyKey: `payrouter_run_${paymentId}`,
      amount: { minor: 2500, currency: 'USD' },
      provider: 'stripe',
      providerPaymentId: sessionId,
    });
  });
});

describe('a refund whose refunder died before making it', () => {
  /** A router on `store` whose Stripe provider is `provider`, with a short run lease. */
  async function routerOn(
    store: PaymentStore,
    provider: PaymentProvider,
    runs: Run[],
    fail: () => boolean,
    leaseMs = 200,
  ) {
    const server = new McpServer({ name: 'refunds', version: '1.0.0' });
    const router = new PayRouter(server, {
      providers: [provider],
      store,
      flow: 'two_step',
      onToolError: 'refund',
      leaseMs,
      subject: () => 'rita',
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    routers.push(router);
    server.registerTool(
      'flaky',
      {
        description: 'Fails when told',
        inputSchema: { n: z.number() },
        price: { amount: '25.00', currency: 'USD' },
      },
      async ({ n }, extra) => {
        const ok = !fail();
        runs.push({ ok, payment: (extra as { payment?: unknown }).payment });
        if (!ok) throw new Error('the run breaks');
        return { content: [{ type: 'text', text: `flaky ${n} ok` }] };
      },
    );
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    closers.push(close);
    return (name: string, args: Record<string, unknown>) =>
      client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
  }

  /** Instance A "dies" right before its refund request: the request never leaves. */
  function dyingStripe(): PaymentProvider {
    const stripe = sandbox.providers().stripe;
    return new Proxy(stripe, {
      get(target, property) {
        if (property === 'refundPayment') return () => new Promise<never>(() => {});
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as PaymentProvider;
  }

  /** A paid call whose run fails on A, which decides the refund and hangs before making it. */
  async function stuckRefund(store: PaymentStore, leaseMs: number) {
    const runs: Run[] = [];
    const onA = await routerOn(store, dyingStripe(), runs, () => true, leaseMs);
    const paymentId = paymentOf(await onA('flaky', { n: 7 }))!.payment_id;
    const sessionId = (await store.get(paymentId))!.attempts.at(-1)!.paymentId;
    sandbox.stripe.pay(sessionId);
    void onA('confirm_payment', { payment_id: paymentId }).catch(() => {});
    await vi.waitFor(async () => expect(await store.get(paymentId)).toMatchObject({ run: 'refunding' }));
    return { runs, paymentId, sessionId };
  }

  it('a payer who asks while the refund is still being made is told it is under way, not that it was made', async () => {
    const store = memoryStore();
    // A holds the run lease for its refund for a minute: B's confirm comes well inside it.
    const { runs, paymentId, sessionId } = await stuckRefund(store, 60_000);
    const onB = await routerOn(store, sandbox.providers().stripe, runs, () => false, 60_000);
    const answer = await onB('confirm_payment', { payment_id: paymentId });
    expect(sandbox.stripe.getRefunds(sessionId)).toHaveLength(0);
    expect(textOf(answer)).toBe(
      '"flaky" failed: the run breaks\nYour payment of $25.00 is being refunded: the refund was decided and is being made. Nothing more is charged and the tool does not run again for this payment.',
    );
    expect(paymentOf(answer)).toMatchObject({ payment_id: paymentId, status: 'paid' });
    expect(paymentOf(answer)?.next).toBe(
      'Nothing to do: the refund is under way. confirm_payment with this payment_id shows it as refunded once it is made.',
    );
    expect(runs.map((r) => r.ok)).toEqual([false]);
  });

  it('is made by a router on its own when nobody touches the payment again, once, and recorded once', async () => {
    const store = memoryStore();
    const { runs, paymentId, sessionId } = await stuckRefund(store, 200);
    // B only starts: no call, no confirm. Its sweep finds the refund once A's lease has run out.
    const b = await routerOn(store, sandbox.providers().stripe, runs, () => false, 200);
    void b;
    await vi.waitFor(() => expect(sandbox.stripe.getRefunds(sessionId)).toHaveLength(1), {
      timeout: 10_000,
      interval: 50,
    });
    await vi.waitFor(async () =>
      expect(await store.get(paymentId)).toMatchObject({ status: 'refunded', run: 'refunded' }),
    );
    const subject = (await store.get(paymentId))!.binding.subject;
    const entries = await routers.at(-1)!.ledger.list({ subject });
    expect(entries.filter((e) => e.intentId === paymentId && e.kind === 'refund')).toHaveLength(1);
    expect(runs.map((r) => r.ok)).toEqual([false]);
    // Nothing is left to sweep, and a later sweep refunds nothing more.
    expect(await store.refundsToSettle?.(10)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(sandbox.stripe.getRefunds(sessionId)).toHaveLength(1);
  });

  it('is retried by the next confirm; refused by Stripe, the payment is kept and that confirm runs the tool', async () => {
    const runs: Run[] = [];
    const store = memoryStore();
    const stripe = sandbox.providers().stripe;
    // Instance A "dies" right before its refund request: the request never leaves.
    const dying = new Proxy(stripe, {
      get(target, property) {
        if (property === 'refundPayment') return () => new Promise<never>(() => {});
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as PaymentProvider;
    const onA = await routerOn(store, dying, runs, () => true);
    const onB = await routerOn(store, stripe, runs, () => false);
    const required = await onA('flaky', { n: 3 });
    const paymentId = paymentOf(required)!.payment_id;
    const sessionId = (await store.get(paymentId))!.attempts.at(-1)!.paymentId;
    sandbox.stripe.pay(sessionId);
    void onA('confirm_payment', { payment_id: paymentId }).catch(() => {});
    await vi.waitFor(async () => expect(await store.get(paymentId)).toMatchObject({ run: 'refunding' }));
    // A held the run lease for its refund; it runs out (a 1 ms probe lease taken once it has).
    await vi.waitFor(async () =>
      expect((await store.acquireLease(paymentId, 'probe', 1)).kind).toBe('acquired'),
    );

    // Stripe refuses the refund B makes: nothing was returned, so the payment is kept for a retry,
    // and this very confirm is that retry.
    sandbox.stripe.fail({ status: 402, pathIncludes: '/v1/refunds' });
    const confirmed = await onB('confirm_payment', { payment_id: paymentId });
    expect(textOf(confirmed)).toBe('flaky 3 ok');
    expect(refunds()).toBe(1);
    expect(sandbox.stripe.getRefunds(sessionId)).toHaveLength(0);
    expect(runs.map((r) => r.ok)).toEqual([false, true]);
    expect(await store.get(paymentId)).toMatchObject({ status: 'paid', run: 'done' });
  });
});
