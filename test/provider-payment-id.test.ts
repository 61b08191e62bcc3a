// The provider's own id of a payment (Stripe's Checkout Session `cs_…`, Walleot's session id) is
// on the payment objects payrouter hands out: `provider_payment_id` in the payment-required result
// and the paid result, `extra.payment.providerPaymentId` in the handler, `paymentId` in the
// onPaymentCreated hook. So a test drives the stand-in by that id, as the README shows, instead
// of digging it out of the link or the store.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type PaymentContext, PayRouter, silentLogger } from '../src/index.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { connectClient, paymentOf, textOf } from './support/paid-server.js';

let sandbox: Sandbox;
let router: PayRouter<'walleot' | 'stripe'>;
const runs: PaymentContext[] = [];
const created: Array<{ providerId: string; paymentId: string; url: string }> = [];

beforeAll(async () => {
  sandbox = await startSandbox();
});
afterAll(async () => {
  await router?.close();
  await sandbox?.close();
});
beforeEach(async () => {
  await router?.close();
  sandbox.reset();
  runs.length = 0;
  created.length = 0;
  router = new PayRouter({
    providers: Object.values(sandbox.providers({ logger: silentLogger })),
    logger: silentLogger,
    hooks: { onPaymentCreated: (event) => void created.push(event) },
  });
});

async function paidCall(provider: 'walleot' | 'stripe') {
  const server = router.install(new McpServer({ name: 'ids', version: '1.0.0' }));
  server.registerTool(
    'shout',
    { inputSchema: { word: z.string() }, price: { amount: '0.50', currency: 'USD' }, providers: [provider] },
    async ({ word }, extra) => {
      runs.push(extra.payment);
      return { content: [{ type: 'text', text: `${word.toUpperCase()}!` }] };
    },
  );
  const connection = await connectClient(server, { elicitation: 'none' });
  const required = (await connection.client.callTool({
    name: 'shout',
    arguments: { word: 'hi' },
  })) as CallToolResult;
  const payment = paymentOf(required)!;
  const confirm = async () =>
    (await connection.client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id },
    })) as CallToolResult;
  return { required, payment, confirm, close: connection.close };
}

describe('the provider payment id on the payment object', () => {
  it("Stripe: the Checkout Session id, which pays the stand-in's session directly", async () => {
    const call = await paidCall('stripe');
    const sessionId = call.payment.provider_payment_id!;
    expect(sessionId).toMatch(/^cs_test_\w+$/);
    // The session behind the link the payer got, and the one the hook heard of.
    expect(sandbox.stripe.getSession(sessionId)?.url).toBe(call.payment.payment_url);
    expect(created).toEqual([{ ...created[0], providerId: 'stripe', paymentId: sessionId }]);

    sandbox.stripe.pay(sessionId);
    const done = await call.confirm();
    expect(textOf(done)).toBe('HI!');
    expect(paymentOf(done)).toMatchObject({
      status: 'paid',
      provider: 'stripe',
      provider_payment_id: sessionId,
    });
    expect(runs).toEqual([
      {
        paymentId: call.payment.payment_id,
        idempotencyKey: `payrouter_run_${call.payment.payment_id}`,
        amount: { minor: 50, currency: 'USD' },
        provider: 'stripe',
        providerPaymentId: sessionId,
      },
    ]);
    // An id, not a credential: nothing secret reaches the client.
    expect(JSON.stringify([call.required, done])).not.toMatch(/secret|sk_test_|whsec_/);
    await call.close();
  });

  it("Walleot: the session id, which settles the stand-in's session directly", async () => {
    const call = await paidCall('walleot');
    const sessionId = call.payment.provider_payment_id!;
    expect(sandbox.walleot.getSession(sessionId)).toBeDefined();
    expect(call.payment.payment_url).toContain(sessionId);
    expect(created.map((c) => [c.providerId, c.paymentId])).toEqual([['walleot', sessionId]]);

    sandbox.walleot.setStatus(sessionId, 'paid');
    const done = await call.confirm();
    expect(textOf(done)).toBe('HI!');
    expect(paymentOf(done)?.provider_payment_id).toBe(sessionId);
    expect(runs.map((r) => [r.provider, r.providerPaymentId])).toEqual([['walleot', sessionId]]);
    expect(JSON.stringify([call.required, done])).not.toContain(sandbox.walleot.apiKey);
    await call.close();
  });
});
