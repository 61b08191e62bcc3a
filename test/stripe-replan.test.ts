// A planned Stripe payment whose first send never reached Stripe, sent again after its stored
// `expires_at` fell inside Stripe's 30-minute minimum: Stripe refuses the old plan (400), so it is
// planned again (new idempotency key, new expiry) and the call gets its link. A plan that did
// reach Stripe is replayed, never duplicated. Real SDK Client, real stripe SDK, the stand-in over
// HTTP; only Date is faked (the stand-in's clock follows it).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { memoryStore, type PaymentStore, PayRouter } from '../src/index.js';
import type { PaymentProvider } from '../src/providers.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { connectClient, paymentOf, textOf } from './support/paid-server.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const MINUTE = 60_000;

let sandbox: Sandbox;
const closers: Array<() => Promise<void>> = [];

beforeEach(async () => {
  sandbox = await startSandbox();
});

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(closers.splice(0).map((c) => c()));
  await sandbox.close();
});

async function routerWith(provider: PaymentProvider) {
  const store = memoryStore();
  const inserted: string[] = [];
  // Only to learn the id of an intent whose call ended in an error.
  const watched = new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (property === 'insert')
        return (...args: Parameters<PaymentStore['insert']>) => {
          inserted.push(args[0].id);
          return target.insert(...args);
        };
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const server = new McpServer({ name: 'replan', version: '1.0.0' });
  const router = new PayRouter(server, {
    providers: [provider],
    store: watched,
    flow: 'two_step',
    subject: () => 'rita',
    logger: quiet,
  });
  server.registerTool(
    'report',
    {
      description: 'A report',
      inputSchema: { topic: z.string() },
      price: { amount: '5.00', currency: 'USD' },
    },
    async ({ topic }) => ({ content: [{ type: 'text', text: `report on ${topic}` }] }),
  );
  const { client, close } = await connectClient(server, { elicitation: 'none' });
  closers.push(async () => {
    await close();
    await router.close();
  });
  const call = () =>
    client.callTool({ name: 'report', arguments: { topic: 'tides' } }) as Promise<CallToolResult>;
  return { store, call, inserted };
}

const creates = () =>
  sandbox.stripe.requests.entries.filter((r) => r.method === 'POST' && r.path === '/v1/checkout/sessions');

describe('a stale Stripe plan', () => {
  it('is planned again when its first send never reached Stripe and its expiry is now too close', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const { store, call, inserted } = await routerWith(sandbox.providers().stripe);
    // The first create never reaches Stripe: both tries of it (the SDK retries once) meet a fault.
    sandbox.stripe.fail({ status: 503, count: 2, pathIncludes: '/v1/checkout/sessions' });
    const failed = await call();
    expect(failed.isError, textOf(failed)).toBe(true);
    expect(sandbox.stripe.listSessions()).toHaveLength(0);
    const stored = (await store.get(inserted[0]!))!;
    const firstPlan = stored.plannedAttempt!;
    expect(firstPlan.providerId).toBe('stripe');

    // 40 minutes later (of a 60-minute plan): 20 minutes left, under Stripe's 30-minute minimum.
    vi.setSystemTime(firstPlan.plannedAt + 40 * MINUTE);
    sandbox.stripe.requests.clear();
    const retried = await call();
    const payment = paymentOf(retried);
    expect(payment, textOf(retried)).toMatchObject({ status: 'pending', provider: 'stripe' });

    const sessions = sandbox.stripe.listSessions();
    expect(sessions).toHaveLength(1);
    const intent = (await store.get(payment!.payment_id))!;
    expect(intent.plannedAttempt).toBeUndefined();
    expect(intent.attempts).toHaveLength(1);
    const attempt = intent.attempts[0]!;
    expect(attempt.paymentId).toBe(sessions[0]!.id);
    expect(attempt.idempotencyKey).not.toBe(firstPlan.idempotencyKey);
    // The new plan has a whole payment lifetime again, inside Stripe's window.
    expect(sessions[0]!.expires_at * 1000).toBeGreaterThanOrEqual(Date.now() + 30 * MINUTE);
    // The old plan was tried first (it could have reached Stripe): refused, then the new one.
    const sent = creates();
    expect(sent.map((r) => r.headers['idempotency-key'])).toEqual([
      firstPlan.idempotencyKey,
      attempt.idempotencyKey,
    ]);
  });

  it('that did reach Stripe (its answer was lost) is replayed, not created twice', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const real = sandbox.providers().stripe;
    let loseAnswer = true;
    // The request reaches Stripe and creates the session; the answer is lost on the way back.
    const lossy = new Proxy(real, {
      get(target, property) {
        if (property === 'createPayment') {
          return async (...args: Parameters<PaymentProvider['createPayment']>) => {
            const created = await target.createPayment(args[0], args[1]);
            if (loseAnswer) {
              loseAnswer = false;
              throw new Error('socket hang up');
            }
            return created;
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as PaymentProvider;
    const { store, call, inserted } = await routerWith(lossy);
    const failed = await call();
    expect(failed.isError, textOf(failed)).toBe(true);
    expect(sandbox.stripe.listSessions()).toHaveLength(1);
    const firstPlan = (await store.get(inserted[0]!))!.plannedAttempt!;

    vi.setSystemTime(firstPlan.plannedAt + 40 * MINUTE);
    const retried = await call();
    const payment = paymentOf(retried);
    expect(payment, textOf(retried)).toMatchObject({ status: 'pending', provider: 'stripe' });
    const sessions = sandbox.stripe.listSessions();
    expect(sessions).toHaveLength(1);
    const intent = (await store.get(payment!.payment_id))!;
    expect(intent.attempts.map((a) => [a.paymentId, a.idempotencyKey])).toEqual([
      [sessions[0]!.id, firstPlan.idempotencyKey],
    ]);
  });
});
