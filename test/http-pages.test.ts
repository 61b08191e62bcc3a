import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { escapeHtml } from '../src/http/html.js';
import { memoryStore } from '../src/index.js';
import { methodTitle } from '../src/mcp/interaction/live.js';
import { instrumentedStore, postForm, startHttpWorld, storeOf, until } from './support/http-world.js';
import { connectClient, paymentOf, textOf } from './support/paid-server.js';

let world: Awaited<ReturnType<typeof startHttpWorld>>;

beforeAll(async () => {
  world = await startHttpWorld();
});
afterAll(async () => {
  await world?.close();
});
beforeEach(() => {
  world.sandbox.reset();
  world.runs.length = 0;
});

const creates = (provider: 'walleot' | 'stripe') =>
  world.sandbox[provider].requests.entries.filter((r) => r.method === 'POST' && /\/sessions$/.test(r.path))
    .length;
const stripeStatusReads = (sessionId: string) =>
  world.sandbox.stripe.requests.entries.filter(
    (r) => r.method === 'GET' && r.path.endsWith(`/checkout/sessions/${sessionId}`),
  ).length;
const payPage = (id: string) => `${world.publicUrl}/pay/${id}`;

/** A client without elicitation calls the 25.00 USD report: both providers are eligible. */
async function reportPayment(options: Parameters<typeof world.makeHttpServer>[0] = {}) {
  const made = world.makeHttpServer(options);
  const connection = await connectClient(made.server, { elicitation: 'none' });
  const result = (await connection.client.callTool({
    name: 'report',
    arguments: { topic: 'cats' },
  })) as CallToolResult;
  const payment = paymentOf(result)!;
  return { ...made, ...connection, result, payment, intentId: payment.payment_id };
}

function expectPageHeaders(response: Response) {
  expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
  const csp = response.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("style-src 'unsafe-inline'");
  expect(csp).toMatch(/form-action 'self' http: https:/);
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  expect(response.headers.get('referrer-policy')).toBe('no-referrer');
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(response.headers.get('x-frame-options')).toBe('DENY');
}

describe('hosted pay page', () => {
  it('choose Stripe on the page, pay at the checkout, come back: confirm_payment returns the tool result', async () => {
    const { client, close, router, result, payment, intentId } = await reportPayment();
    expect(result.isError).toBe(true);
    expect(payment.payment_url).toBe(payPage(intentId));
    expect(payment.provider).toBeNull();
    expect(creates('walleot') + creates('stripe')).toBe(0);

    const page = await fetch(payPage(intentId));
    expect(page.status).toBe(200);
    expectPageHeaders(page);
    const htmlText = await page.text();
    expect(htmlText).toContain('$25.00');
    expect(htmlText).toContain('A big report');
    const providers = world.sandbox.providers();
    for (const id of ['walleot', 'stripe'] as const) {
      const caps = providers[id].capabilities;
      // Methods are described by kind and speed; the payer is not surcharged, so no merchant fee shows.
      expect(htmlText).toContain(escapeHtml(methodTitle(caps)));
      expect(htmlText).toContain(`name="method" value="${id}"`);
      if (caps.fee.percentBps > 0) expect(htmlText).not.toContain(escapeHtml(caps.fee.label));
    }
    expect(htmlText).toContain(`action="${escapeHtml(payPage(intentId))}"`);

    const chosen = await postForm(payPage(intentId), { method: 'stripe' });
    expect(chosen.status).toBe(303);
    const checkout = chosen.headers.get('location')!;
    expect(checkout.startsWith(`${world.sandbox.stripe.origin}/checkout/`)).toBe(true);
    expect(creates('stripe')).toBe(1);
    expect(creates('walleot')).toBe(0);

    // The pay page now offers to continue at Stripe, and still the other method.
    const pending = await (await fetch(payPage(intentId))).text();
    expect(pending).toContain('Continue to Card (Stripe Checkout)');
    expect(pending).toContain('name="method" value="walleot"');

    // The user pays; Stripe sends them to our return page.
    const paid = await fetch(`${checkout}/pay`, { method: 'POST', redirect: 'manual' });
    expect(paid.status).toBe(303);
    const returnUrl = paid.headers.get('location')!;
    expect(returnUrl).toBe(`${world.publicUrl}/return/${intentId}?outcome=success`);
    const sessionId = world.sandbox.stripe.listSessions()[0]!.id;
    const readsBefore = stripeStatusReads(sessionId);
    const back = await fetch(returnUrl);
    expect(back.status).toBe(200);
    expectPageHeaders(back);
    expect(await back.text()).toContain('Payment received');
    expect(stripeStatusReads(sessionId)).toBe(readsBefore + 1);
    expect((await storeOf(router).get(intentId))?.status).toBe('paid');

    const done = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: intentId },
    })) as CallToolResult;
    expect(done.isError).toBeFalsy();
    expect(textOf(done)).toBe('Report on cats (1 pages)');
    expect(world.runsOf('report')).toBe(1);

    // Paid: the page says so, offers no method, and a late POST just comes back here.
    const finished = await (await fetch(payPage(intentId))).text();
    expect(finished).toContain('Paid — return to your chat');
    expect(finished).not.toContain('name="method"');
    const late = await postForm(payPage(intentId), { method: 'walleot' });
    expect(late.status).toBe(303);
    expect(late.headers.get('location')).toBe(payPage(intentId));
    expect(creates('walleot')).toBe(0);
    await close();
  });

  it('switching method on the page replaces the live payment', async () => {
    const { close, router, intentId } = await reportPayment();
    const toStripe = await postForm(payPage(intentId), { method: 'stripe' });
    expect(toStripe.status).toBe(303);
    const toWalleot = await postForm(payPage(intentId), { method: 'walleot' });
    expect(toWalleot.status).toBe(303);
    expect(toWalleot.headers.get('location')!.startsWith(world.sandbox.walleot.origin)).toBe(true);
    const intent = (await storeOf(router).get(intentId))!;
    expect(intent.attempts.map((a) => a.providerId)).toEqual(['stripe', 'walleot']);
    expect(world.sandbox.stripe.listSessions()[0]?.status).toBe('expired');
    // Choosing the live method again creates nothing new.
    expect((await postForm(payPage(intentId), { method: 'walleot' })).status).toBe(303);
    expect(creates('walleot')).toBe(1);
    await close();
  });

  it('a method that is not eligible, or no method, is refused with 400 and creates nothing', async () => {
    const { close, router, intentId } = await reportPayment();
    for (const fields of [{ method: 'paypal' }, {}, { method: '' }]) {
      const response = await postForm(payPage(intentId), fields as Record<string, string>);
      expect(response.status).toBe(400);
      expectPageHeaders(response);
    }
    // Walleot is configured but cannot take yen: not eligible for this intent.
    const { client } = await connectClient(world.makeHttpServer().server, { elicitation: 'none' });
    const yen = paymentOf((await client.callTool({ name: 'status_now', arguments: {} })) as CallToolResult)!;
    expect((await postForm(payPage(yen.payment_id), { method: 'walleot' })).status).toBe(400);

    expect(creates('walleot')).toBe(0);
    expect(creates('stripe')).toBe(1); // the yen call's own payment
    const intent = (await storeOf(router).get(intentId))!;
    expect(intent.status).toBe('requires_method');
    expect(intent.attempts).toEqual([]);
    await client.close();
    await close();
  });

  it('unknown and malformed ids get 404 pages; junk never reaches the store', async () => {
    const base = memoryStore();
    const instrumented = instrumentedStore(base);
    const { router } = world.makeHttpServer({ store: instrumented.store });
    const unknownId = `pay_${'A'.repeat(24)}`;
    for (const url of [payPage(unknownId), `${world.publicUrl}/return/${unknownId}?outcome=success`]) {
      const response = await fetch(url);
      expect(response.status).toBe(404);
      expectPageHeaders(response);
      expect(await response.text()).toContain('does not exist');
    }
    expect((await postForm(payPage(unknownId), { method: 'stripe' })).status).toBe(404);
    expect(instrumented.gets.every((id) => id === unknownId)).toBe(true);
    instrumented.gets.length = 0;

    for (const junk of ['%3Cscript%3E', 'pay_short', `pay_${'A'.repeat(23)}%00`, "pay_'OR'1'='1"]) {
      const response = await fetch(payPage(junk));
      expect(response.status, junk).toBe(404);
      const body = await response.text();
      expect(body).not.toContain('<script>');
      expect((await fetch(`${world.publicUrl}/return/${junk}`)).status).toBe(404);
    }
    expect(instrumented.gets).toEqual([]);
    // Unknown paths: a plain 404 when nothing comes next.
    expect((await fetch(`${world.publicUrl}/nothing/here`)).status).toBe(404);
    expect((await fetch(`${world.publicUrl}/pay/${unknownId}/extra`)).status).toBe(404);
    await router.close();
    await base.close();
  });

  it('a tool description with markup is shown escaped', async () => {
    const { server } = world.makeHttpServer();
    server.registerTool(
      'risky',
      {
        description: '<script>alert(1)</script> & "quotes"',
        inputSchema: { n: z.number() },
        price: { amount: '1.00', currency: 'USD' },
      },
      async () => ({ content: [{ type: 'text' as const, text: 'ok' }] }),
    );
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const payment = paymentOf(
      (await client.callTool({ name: 'risky', arguments: { n: 1 } })) as CallToolResult,
    )!;
    const response = await fetch(payment.payment_url!);
    expect(response.status).toBe(200);
    const body = await response.text();
    expect(body).not.toContain('<script>');
    expect(body).toContain('&#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;quotes&#34;');
    await close();
  });

  it('an expired payment is shown as expired, without methods', async () => {
    const { close, intentId } = await reportPayment();
    const chosen = await postForm(payPage(intentId), { method: 'stripe' });
    expect(chosen.status).toBe(303);
    world.sandbox.stripe.lapse(world.sandbox.stripe.listSessions()[0]!.id);
    const body = await (await fetch(payPage(intentId))).text();
    expect(body).toContain('This payment link expired');
    expect(body).not.toContain('name="method"');
    await close();
  });

  it('other methods than GET, HEAD and POST are refused', async () => {
    const { close, intentId } = await reportPayment();
    const put = await fetch(payPage(intentId), { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
    const head = await fetch(payPage(intentId), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect((await fetch(`${world.publicUrl}/return/${intentId}`, { method: 'POST' })).status).toBe(405);
    await close();
  });
});

describe('return page', () => {
  it('makes exactly one status read and wakes a waiting URL-mode call', async () => {
    // One poll a minute and no webhook target: only the return page can finish this call in time.
    const { server, router } = world.makeHttpServer({
      timeouts: { choiceMs: 5000, paymentWaitMs: 20_000 },
      confirmation: { pendingTtlMs: 50, poll: { initialMs: 60_000, maxMs: 60_000 } },
    });
    const { client, elicitations, close } = await connectClient(server, {
      elicitation: 'url',
      onElicit: () => ({ action: 'accept' }),
    });
    const call = client.callTool({ name: 'status_now', arguments: {} }) as Promise<CallToolResult>;
    // The link is delivered once the payment is recorded; the call then waits without polling,
    // expecting the return page to tell it.
    await until(() => elicitations.length === 1, 'the payment link');
    const sessionId = world.sandbox.stripe.listSessions()[0]!.id;
    world.sandbox.stripe.pay(sessionId);

    const intentId = (await storeOf(router).findByPayment('stripe', sessionId))!.id;
    const back = await fetch(`${world.publicUrl}/return/${intentId}?outcome=success`);
    expect(back.status).toBe(200);
    expect(await back.text()).toContain('Payment received');
    expect(stripeStatusReads(sessionId)).toBe(1);

    const result = await call;
    expect(textOf(result)).toBe('all good');
    expect(world.runsOf('status_now')).toBe(1);
    expect(stripeStatusReads(sessionId)).toBe(1);
    await close();
  });

  it('not paid yet (the user canceled at checkout): says so and links back to the pay page', async () => {
    const { close, intentId } = await reportPayment();
    const chosen = await postForm(payPage(intentId), { method: 'stripe' });
    const canceled = await fetch(`${chosen.headers.get('location')}/cancel`, {
      method: 'POST',
      redirect: 'manual',
    });
    const returnUrl = canceled.headers.get('location')!;
    expect(returnUrl).toBe(`${world.publicUrl}/return/${intentId}?outcome=cancel`);
    const body = await (await fetch(returnUrl)).text();
    expect(body).toContain('Payment not completed yet');
    expect(body).toContain('You left the checkout before paying.');
    expect(body).toContain(`href="${escapeHtml(payPage(intentId))}"`);
    await close();
  });
});
