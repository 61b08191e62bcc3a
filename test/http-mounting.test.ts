import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import express from 'express';
import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PayRouter } from '../src/index.js';
import { listenLate, postForm, storeOf } from './support/http-world.js';
import { connectClient, paymentOf, startWorld } from './support/paid-server.js';

let world: Awaited<ReturnType<typeof startWorld>>;
let http: Awaited<ReturnType<typeof listenLate>>;
let publicUrl: string;
const stripeSdk = new Stripe('sk_test_signing_only');

beforeAll(async () => {
  world = await startWorld();
  http = await listenLate();
  publicUrl = `${http.origin}/payrouter`;
});
afterAll(async () => {
  await http?.close();
  await world?.close();
});
beforeEach(() => {
  world.sandbox.reset();
  world.runs.length = 0;
});

/** A paid Stripe intent (yen: only Stripe can take it) and its signed completion webhook. */
async function paidStripeEvent(router: PayRouter, server: Parameters<typeof connectClient>[0]) {
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
  it('serves its pages under the prefix and hands unknown paths to the next middleware', async () => {
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

    const { client, close } = await connectClient(server, { elicitation: 'none' });
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
    await close();
  });

  it('behind express.json() a webhook cannot be verified: 400 says to mount the handler first, nothing changes', async () => {
    const { server, router } = world.makeServer({ publicUrl });
    const app = express();
    app.use(express.json());
    app.use('/payrouter', router.httpHandler());
    http.use(app);

    const { intentId, deliver, close } = await paidStripeEvent(router, server);
    const response = await deliver();
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toContain(
      'Mount router.httpHandler() before any body parser',
    );
    expect((await storeOf(router).get(intentId))?.status).toBe('pending');
    await close();
  });

  it('uses the raw body express.raw() kept, and the form express.urlencoded() parsed', async () => {
    const { server, router } = world.makeServer({ publicUrl });
    const app = express();
    app.use(express.raw({ type: 'application/json' }));
    app.use(express.urlencoded({ extended: false }));
    app.use('/payrouter', router.httpHandler());
    http.use(app);

    const { client, intentId, deliver, close } = await paidStripeEvent(router, server);
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
    await close();
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

  async function expectPayPage(server: Parameters<typeof connectClient>[0]) {
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

  it('mounted at the root of an Express app: answers only under publicUrl, the app keeps its routes', async () => {
    const { server, router } = world.makeServer({ publicUrl });
    const app = express();
    app.use(router.httpHandler());
    appRoutes(app);
    http.use(app);
    await expectAppRoutes();
    await expectPayPage(server);
  });

  it('mounted under the publicUrl path next to the app routes: both keep working', async () => {
    const { server, router } = world.makeServer({ publicUrl });
    const app = express();
    appRoutes(app);
    app.use('/payrouter', router.httpHandler());
    http.use(app);
    await expectAppRoutes();
    await expectPayPage(server);
  });

  it('as a plain listener: paths outside publicUrl get 404, whatever they look like', async () => {
    const { server, router } = world.makeServer({ publicUrl });
    http.use(router.httpHandler());
    const outside = await fetch(`${http.origin}/pay/pay_${'A'.repeat(24)}`);
    expect(outside.status).toBe(404);
    expect(await outside.text()).toContain('There is nothing at this address.');
    expect((await fetch(`${http.origin}/webhooks/stripe`, { method: 'POST', body: '{}' })).status).toBe(404);
    await expectPayPage(server);
  });
});
