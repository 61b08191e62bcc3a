import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Stripe from 'stripe';
import { describe, expect } from 'vitest';
import { memoryStore } from '../src/index.js';
import type { CheckoutSessionEvent } from '../src/sandbox/stripe.js';
import { type ConnectClient, it } from './support/fixture.js';
import { type HttpWorld, instrumentedStore, storeOf, until } from './support/http-world.js';
import { paymentOf, textOf } from './support/paid-server.js';

const stripeSdk = new Stripe('sk_test_signing_only');

const webhookUrl = (world: HttpWorld) => `${world.publicUrl}/webhooks/stripe`;
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Status reads of one Checkout Session at the Stripe stand-in. */
const statusReads = (world: HttpWorld, sessionId: string) =>
  world.sandbox.stripe.requests.entries.filter(
    (r) => r.method === 'GET' && r.path.endsWith(`/checkout/sessions/${sessionId}`),
  ).length;

function post(world: HttpWorld, body: string | Buffer, signature?: string, url = webhookUrl(world)) {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(signature === undefined ? {} : { 'stripe-signature': signature }),
    },
    body,
  });
}

function sign(
  world: HttpWorld,
  payload: string,
  secret = world.sandbox.stripe.webhookSecret,
  timestamp = nowSeconds(),
) {
  return stripeSdk.webhooks.generateTestHeaderString({ payload, secret, timestamp });
}

/** A two-step client starts a JPY call (only Stripe can take it): one Checkout Session, pending. */
async function pendingStripePayment(
  { world, connectClient }: { world: HttpWorld; connectClient: ConnectClient },
  options: Parameters<HttpWorld['makeHttpServer']>[0] = {},
) {
  const made = world.makeHttpServer(options);
  const connection = await connectClient(made.server, { elicitation: 'none' });
  const result = (await connection.client.callTool({ name: 'status_now', arguments: {} })) as CallToolResult;
  const payment = paymentOf(result)!;
  expect(payment).toMatchObject({
    status: 'pending',
    provider: 'stripe',
    payment_url: `${world.publicUrl}/pay/${payment.payment_id}`,
  });
  const intent = (await storeOf(made.router).get(payment.payment_id))!;
  const sessionId = intent.attempts[0]!.paymentId;
  return { ...made, ...connection, intentId: payment.payment_id, sessionId };
}

/** The event the stand-in raised last for a session (built and kept even with no delivery target). */
function lastEvent(
  world: HttpWorld,
  sessionId: string,
  type: CheckoutSessionEvent['type'],
): CheckoutSessionEvent {
  const event = world.sandbox.stripe.webhookEvents
    .filter((e) => e.type === type && e.data.object.id === sessionId)
    .at(-1);
  if (!event) throw new Error(`no ${type} event for ${sessionId}`);
  return event;
}

describe('Stripe webhooks through the stand-in’s own delivery', () => {
  it('a paid session wakes a waiting URL-mode call, which runs the tool once', async ({
    httpWorld: world,
    connectClient,
  }) => {
    // Polling is slowed down to one read a minute, so only the webhook can finish this call in time.
    const { server, router } = world.makeHttpServer({
      timeouts: { choiceMs: 5000, paymentWaitMs: 20_000 },
      confirmation: { pendingTtlMs: 50, poll: { initialMs: 60_000, maxMs: 60_000 } },
    });
    world.sandbox.stripe.setWebhookTarget({ url: webhookUrl(world) });
    const { client, elicitations } = await connectClient(server, {
      elicitation: 'url',
      onElicit: () => ({ action: 'accept' }),
    });

    const call = client.callTool({ name: 'status_now', arguments: {} }) as Promise<CallToolResult>;
    await until(() => world.sandbox.stripe.listSessions().length === 1, 'the checkout session');
    const sessionId = world.sandbox.stripe.listSessions()[0]!.id;
    // The link was delivered, so the call is waiting; with webhooks configured it does not poll.
    await until(() => elicitations.length === 1, 'the payment link');
    world.sandbox.stripe.pay(sessionId);

    const result = await call;
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe('all good');
    expect(world.runsOf('status_now')).toBe(1);
    expect(statusReads(world, sessionId)).toBe(0);
    await world.sandbox.stripe.flushWebhooks();
    expect(world.sandbox.stripe.webhookDeliveries).toEqual([
      { eventId: expect.stringMatching(/^evt_/), type: 'checkout.session.completed', status: 200 },
    ]);
    const payment = paymentOf(result)!;
    expect(elicitations[0]).toMatchObject({
      mode: 'url',
      // The method is settled (only Stripe takes yen): the link goes straight to its checkout.
      url: `${world.publicUrl}/pay/${payment.payment_id}?method=stripe`,
    });
    expect((await storeOf(router).get(payment.payment_id))?.status).toBe('paid');
  });

  it('duplicated and reordered async events: processed once each, and the late "unpaid" never undoes "paid"', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { client, router, intentId, sessionId } = await pendingStripePayment({
      world,
      connectClient,
    });
    world.sandbox.stripe.setWebhookTarget({ url: webhookUrl(world), duplicate: true, reorder: true });
    // completed (complete/unpaid) then async_payment_succeeded, delivered reversed and each twice.
    world.sandbox.stripe.payAsync(sessionId, 'succeeded');
    await world.sandbox.stripe.flushWebhooks();

    const deliveries = world.sandbox.stripe.webhookDeliveries;
    expect(deliveries.map((d) => [d.type, d.status])).toEqual([
      ['checkout.session.async_payment_succeeded', 200],
      ['checkout.session.async_payment_succeeded', 200],
      ['checkout.session.completed', 200],
      ['checkout.session.completed', 200],
    ]);
    const intent = (await storeOf(router).get(intentId))!;
    expect(intent.status).toBe('paid');
    expect(intent.attempts[0]).toMatchObject({ status: 'paid' });

    const done = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: intentId },
    })) as CallToolResult;
    expect(textOf(done)).toBe('all good');
    expect(world.runsOf('status_now')).toBe(1);
  });
});

describe('Stripe webhooks signed with the stripe SDK’s test helper', () => {
  it('rejects forged, stale, tampered and malformed deliveries without touching the intent', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { router, intentId, sessionId } = await pendingStripePayment({ world, connectClient });
    world.sandbox.stripe.pay(sessionId); // no delivery target: the event is only recorded
    const payload = JSON.stringify(lastEvent(world, sessionId, 'checkout.session.completed'));
    const before = (await storeOf(router).get(intentId))!;

    const attempts: Array<[string, Response]> = [
      ['wrong secret', await post(world, payload, sign(world, payload, 'whsec_not_the_right_one'))],
      ['stale timestamp', await post(world, payload, sign(world, payload, undefined, nowSeconds() - 3600))],
      ['tampered body', await post(world, payload.replace('"paid"', '"PAID"'), sign(world, payload))],
      [
        'malformed JSON',
        await post(world, '{"id": "evt_1", "type":', sign(world, '{"id": "evt_1", "type":')),
      ],
      ['no signature', await post(world, payload)],
    ];
    for (const [what, response] of attempts) {
      expect(response.status, what).toBe(400);
      const body = (await response.json()) as { error: string };
      expect(typeof body.error, what).toBe('string');
      expect(body.error, what).not.toContain(world.sandbox.stripe.webhookSecret);
    }
    const after = (await storeOf(router).get(intentId))!;
    expect(after.version).toBe(before.version);
    expect(after.status).toBe('pending');
  });

  it('applies a valid event once; a replay, a stale "unpaid" completion and a late expiry change nothing', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { client, router, intentId, sessionId } = await pendingStripePayment({
      world,
      connectClient,
    });
    world.sandbox.stripe.pay(sessionId);
    const completed = lastEvent(world, sessionId, 'checkout.session.completed');
    const payload = JSON.stringify(completed);

    const first = await post(world, payload, sign(world, payload));
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ received: true });
    const paid = (await storeOf(router).get(intentId))!;
    expect(paid.status).toBe('paid');

    const replay = await post(world, payload, sign(world, payload));
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual({ received: true, duplicate: true });

    // Out of order: a completion that still says "unpaid" arrives after the payment.
    const stale = {
      ...completed,
      id: 'evt_stale_unpaid_completion',
      data: { object: { ...completed.data.object, payment_status: 'unpaid' } },
    };
    const stalePayload = JSON.stringify(stale);
    expect((await post(world, stalePayload, sign(world, stalePayload))).status).toBe(200);

    const expired = {
      ...completed,
      id: 'evt_late_expiry',
      type: 'checkout.session.expired',
      data: { object: { ...completed.data.object, status: 'expired', payment_status: 'unpaid', url: null } },
    };
    const expiredPayload = JSON.stringify(expired);
    expect((await post(world, expiredPayload, sign(world, expiredPayload))).status).toBe(200);

    const after = (await storeOf(router).get(intentId))!;
    expect(after.status).toBe('paid');
    expect(after.version).toBe(paid.version);

    const done = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: intentId },
    })) as CallToolResult;
    expect(textOf(done)).toBe('all good');
    expect(world.runsOf('status_now')).toBe(1);
  });

  it('a store failure while applying answers 500 and leaves the event unmarked, so the retry applies it', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const base = memoryStore();
    const instrumented = instrumentedStore(base);
    const { close, router, intentId, sessionId } = await pendingStripePayment(
      { world, connectClient },
      { store: instrumented.store },
    );
    world.sandbox.stripe.pay(sessionId);
    const payload = JSON.stringify(lastEvent(world, sessionId, 'checkout.session.completed'));

    instrumented.state.failUpdates = true;
    const failed = await post(world, payload, sign(world, payload));
    expect(failed.status).toBe(500);
    expect(await failed.json()).toEqual({ error: 'The event could not be recorded; retry later' });
    expect((await storeOf(router).get(intentId))?.status).toBe('pending');

    instrumented.state.failUpdates = false;
    const retried = await post(world, payload, sign(world, payload));
    expect(retried.status).toBe(200);
    expect(await retried.json()).toEqual({ received: true });
    expect((await storeOf(router).get(intentId))?.status).toBe('paid');
    await close();
    await router.close();
    await base.close();
  });

  it('verified events of other types and events for unknown payments are acknowledged and change nothing', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { router, intentId } = await pendingStripePayment({ world, connectClient });
    const before = (await storeOf(router).get(intentId))!;
    const other = JSON.stringify({
      id: 'evt_other',
      object: 'event',
      type: 'customer.created',
      data: { object: {} },
    });
    expect((await post(world, other, sign(world, other))).status).toBe(200);

    const foreign = JSON.stringify({
      id: 'evt_foreign',
      object: 'event',
      type: 'checkout.session.completed',
      data: {
        object: {
          id: 'cs_test_not_ours',
          object: 'checkout.session',
          status: 'complete',
          payment_status: 'paid',
          metadata: {},
          client_reference_id: null,
        },
      },
    });
    const response = await post(world, foreign, sign(world, foreign));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ received: true });
    expect((await storeOf(router).get(intentId))?.version).toBe(before.version);
  });

  it('unknown providers, wrong methods and oversized bodies are refused', async ({
    httpWorld: world,
    connectClient,
  }) => {
    await pendingStripePayment({ world, connectClient });
    const unknown = await post(world, '{}', 't=1,v1=00', `${world.publicUrl}/webhooks/paypal`);
    expect(unknown.status).toBe(404);
    // Walleot sends no webhooks: it has no endpoint.
    expect((await post(world, '{}', undefined, `${world.publicUrl}/webhooks/walleot`)).status).toBe(404);
    const get = await fetch(webhookUrl(world));
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const huge = await post(world, Buffer.alloc(1024 * 1024 + 1, 0x20), 't=1,v1=00');
    expect(huge.status).toBe(413);
  });
});
