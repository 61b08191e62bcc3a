import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Stripe from 'stripe';
import { beforeEach, describe, expect } from 'vitest';
import type { Logger } from '../src/index.js';
import { it } from './support/fixture.js';
import { type HttpWorld, postForm } from './support/http-world.js';
import { paymentOf, textOf } from './support/paid-server.js';

/**
 * Issue 11 item 12: a provider's "paid" counts only for the intent's own amount and currency. A
 * verified `checkout.session.completed` saying 1 JPY was paid does not unlock a 25.00 USD call;
 * the operator gets an error line. End to end: MCP client, hosted pay page, the router's webhook
 * endpoint over HTTP, the Stripe stand-in.
 */

const signer = new Stripe('sk_test_signing_only');
const errors: Array<{ message: string; fields?: Record<string, unknown> }> = [];
const logger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error: (message, fields) => {
    errors.push({ message, ...(fields === undefined ? {} : { fields }) });
  },
};

beforeEach(() => {
  errors.length = 0;
});

/** A signed completion of `sessionId` reporting `amount_total` of `currency` as paid. */
async function deliverCompleted(
  world: HttpWorld,
  eventId: string,
  sessionId: string,
  amountTotal: number,
  currency: string,
) {
  const session = world.sandbox.stripe.getSession(sessionId)!;
  const payload = JSON.stringify({
    id: eventId,
    object: 'event',
    api_version: '2026-10-28.endive',
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type: 'checkout.session.completed',
    data: {
      object: {
        ...session,
        status: 'complete',
        payment_status: 'paid',
        url: null,
        amount_subtotal: amountTotal,
        amount_total: amountTotal,
        currency,
      },
    },
  });
  const signature = signer.webhooks.generateTestHeaderString({
    payload,
    secret: world.sandbox.stripe.webhookSecret,
  });
  return fetch(`${world.publicUrl}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': signature },
    body: payload,
  });
}

describe('a paid amount or currency other than the intent’s is not paid', () => {
  it('a signed completion of 1 JPY for a 25.00 USD call does not unlock it; 25.00 USD does', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { server } = world.makeHttpServer({ logger, timeouts: { choiceMs: 5000, paymentWaitMs: 100 } });
    const { client } = await connectClient(server, { elicitation: 'none' });
    const confirm = async (paymentId: string) =>
      (await client.callTool({
        name: 'confirm_payment',
        arguments: { payment_id: paymentId },
      })) as CallToolResult;

    const required = (await client.callTool({
      name: 'report',
      arguments: { topic: 'tides' },
    })) as CallToolResult;
    const payment = paymentOf(required)!;
    expect(payment).toMatchObject({ amount: '25.00', currency: 'USD' });
    // The payer picks the card on the hosted page and is sent to Stripe Checkout.
    const chosen = await postForm(payment.payment_url!, { method: 'stripe' });
    expect(chosen.status).toBe(303);
    const sessionId = /\/checkout\/(cs_test_[A-Za-z0-9]+)/.exec(chosen.headers.get('location') ?? '')?.[1];
    expect(sessionId).toBeDefined();
    expect(world.sandbox.stripe.getSession(sessionId!)).toMatchObject({
      amount_total: 2500,
      currency: 'usd',
    });

    const forged = await deliverCompleted(world, 'evt_wrong_amount', sessionId!, 1, 'jpy');
    expect(forged.status).toBe(200);
    const refused = await confirm(payment.payment_id);
    expect(refused.isError).toBe(true);
    expect(paymentOf(refused)?.status).not.toBe('paid');
    expect(textOf(refused)).not.toContain('Report on tides');
    expect(world.runsOf('report')).toBe(0);
    expect(errors).toContainEqual(
      expect.objectContaining({
        message: expect.stringMatching(/another amount or currency/),
        fields: expect.objectContaining({
          intentId: payment.payment_id,
          providerId: 'stripe',
          expected: '$25.00',
        }),
      }),
    );

    // Same currency, another amount: still not paid.
    expect((await deliverCompleted(world, 'evt_wrong_minor', sessionId!, 2499, 'usd')).status).toBe(200);
    expect((await confirm(payment.payment_id)).isError).toBe(true);
    expect(world.runsOf('report')).toBe(0);

    // The intent's own amount and currency: paid, and the tool runs once.
    expect((await deliverCompleted(world, 'evt_right_amount', sessionId!, 2500, 'usd')).status).toBe(200);
    const done = await confirm(payment.payment_id);
    expect(textOf(done)).toBe('Report on tides (1 pages)');
    expect(world.runsOf('report')).toBe(1);
  });
});
