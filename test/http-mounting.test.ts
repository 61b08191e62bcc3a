import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import express from 'express';
import Stripe from 'stripe';
import { describe, expect } from 'vitest';
import type { PayRouter } from '../src/index.js';
import { type ConnectClient, it, test } from './support/fixture.js';
import { type listenLate, postForm, storeOf } from './support/http-world.js';
import { paymentOf, type World } from './support/paid-server.js';

let http: Awaited<ReturnType<typeof listenLate>>;
let publicUrl: string;
const stripeSdk = new Stripe('sk_test_signing_only');

// The HTTP server is the fixture's (one per file); each test's world comes from the fixture too.
test.beforeAll(({ lateHttp }) => {
  http = lateHttp;
  publicUrl = `${http.origin}/payrouter`;
});

/** A paid Stripe intent (yen: only Stripe can take it) and its signed completion webhook. */
async function paidStripeEvent(
  { world, connectClient }: { world: World; connectClient: ConnectClient },
  router: PayRouter,
  server: Parameters<ConnectClient>[0],
) {
  const { client, close } = await connectClient(server, { elicitation: 'none' });
  const payment = paymentOf(
    (await client.callTool({ name: 'status_now', arguments: {} })) as CallToolResult,
  )!;
  const intent = (await storeOf(router).get(payment.payment_id))!;
  const sessionId = intent.attempts[0]!.paymentId;
  world.sandbox.stripe.pay(sessionId);
  const event = world.sandbox.stripe.webhookEvents.find((e) => e.data.object.id === sessionId)!;
  const payload = JSON.stringify(event);
  const signature = stripeSdk.webhooks.generateTestHeaderString({
    payload,
    secret: world.sandbox.stripe.webhookSecret,
  });
  const deliver = () =>
    fetch(`${publicUrl}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': signature },
      body: payload,
    });
  return { client, intentId: payment.payment_id, deliver, close };
}

describe('mounted in Express under the publicUrl path', () => {
  it('serves its pages under the prefix and hands unknown paths to the next middleware', async ({
    world,
    connectClient,
  }) => {
    const { server, router } = world.makeServer({ publicUrl });
    const app = express();
    app.use('/payrouter', router.httpHandler());
    app.get('/payrouter/health', (_req, res) => {
      res.send('app route');
    });
    app.use((_req, res) => {
      res.status(404).send('express fallback');
    });
    http.use(app);

    const { client } = await connectClient(server, { elicitation: 'none' });
    const payment = paymentOf(
      (await client.callTool({ name: 'report', arguments: { topic: 'dogs' } })) as CallToolResult,
    )!;
    expect(payment.payment_url).toBe(`${publicUrl}/pay/${payment.payment_id}`);
    const page = await fetch(payment.payment_url!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('A big report');

    expect(await (await fetch(`${publicUrl}/health`)).text()).toBe('app route');
    const unknown = await fetch(`${publicUrl}/somewhere/else`);
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toBe('express fallback');
  });

  it('behind express.json() a webhook cannot be verified: 400 says to mount the handler first, nothing changes', async ({
    world,
    connectClient,
  }) => {
    const { server, router } = world.makeServer({ publicUrl });
    const app = express();
    app.use(express.json());
    app.use('/payrouter', router.httpHandler());
    http.use(app);

    const { intentId, deliver } = await paidStripeEvent({ world, connectClient }, router, server);
    const response = await deliver();
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toContain(
      'Mount router.httpHandler() before any body parser',
    );
    expect((await storeOf(router).get(intentId))?.status).toBe('pending');
  });

  it('uses the raw body express.raw() kept, and the form express.urlencoded() parsed', async ({
    world,
    connectClient,
  }) => {
    const { server, router } = world.makeServer({ publicUrl });
    const app = express();
    app.use(express.raw({ type: 'application/json' }));
    app.use(express.urlencoded({ extended: false }));
    app.use('/payrouter', router.httpHandler());
    http.use(app);

    const { client, intentId, deliver } = await paidStripeEvent({ world, connectClient }, router, server);
    const response = await deliver();
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ received: true });
    expect((await storeOf(router).get(intentId))?.status).toBe('paid');

    const report = paymentOf(
      (await client.callTool({ name: 'report', arguments: { topic: 'owls' } })) as CallToolResult,
    )!;
    const chosen = await postForm(report.payment_url!, { method: 'stripe' });
    expect(chosen.status).toBe(303);
    expect(chosen.headers.get('location')!.startsWith(`${world.sandbox.stripe.origin}/checkout/`)).toBe(true);
  });
});

describe("the host app's own /webhooks, /pay and /return routes (issue 11 item 13)", () => {
  /** The app's own routes at paths payrouter serves too, but outside publicUrl's path. */
  function appRoutes(app: express.Express) {
    app.post('/webhooks/github', (_req, res) => {
      res.send('app webhook');
    });
    app.get('/pay/invoice-7', (_req, res) => {
      res.send('app invoice');
    });
    app.get('/return/from-sso', (_req, res) => {
      res.send('app return');
    });
  }

  async function expectAppRoutes() {
    const hook = await fetch(`${http.origin}/webhooks/github`, { method: 'POST', body: '{}' });
    expect(hook.status).toBe(200);
    expect(await hook.text()).toBe('app webhook');
    expect(await (await fetch(`${http.origin}/pay/invoice-7`)).text()).toBe('app invoice');
    expect(await (await fetch(`${http.origin}/return/from-sso`)).text()).toBe('app return');
  }

  async function expectPayPage(connectClient: ConnectClient, server: Parameters<ConnectClient>[0]) {
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const payment = paymentOf(
      (await client.callTool({ name: 'report', arguments: { topic: 'bees' } })) as CallToolResult,
    )!;
    expect(payment.payment_url).toBe(`${publicUrl}/pay/${payment.payment_id}`);
    const page = await fetch(payment.payment_url!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('A big report');
    await close();
  }

  it('mounted at the root of an Express app: answers only under publicUrl, the app keeps its routes', async ({
    world,
    connectClient,
  }) => {
    const { server, router } = world.makeServer({ publicUrl });
    const app = express();
    app.use(router.httpHandler());
    appRoutes(app);
    http.use(app);
    await expectAppRoutes();
    await expectPayPage(connectClient, server);
  });

  it('mounted under the publicUrl path next to the app routes: both keep working', async ({
    world,
    connectClient,
  }) => {
    const { server, router } = world.makeServer({ publicUrl });
    const app = express();
    appRoutes(app);
    app.use('/payrouter', router.httpHandler());
    http.use(app);
    await expectAppRoutes();
    await expectPayPage(connectClient, server);
  });

  it('as a plain listener: paths outside publicUrl get 404, whatever they look like', async ({
    world,
    connectClient,
  }) => {
    const { server, router } = world.makeServer({ publicUrl });
    http.use(router.httpHandler());
    const outside = await fetch(`${http.origin}/pay/pay_${'A'.repeat(24)}`);
    expect(outside.status).toBe(404);
    expect(await outside.text()).toContain('There is nothing at this address.');
    expect((await fetch(`${http.origin}/webhooks/stripe`, { method: 'POST', body: '{}' })).status).toBe(404);
    await expectPayPage(connectClient, server);
  });
});
