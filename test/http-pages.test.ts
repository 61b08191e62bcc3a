import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect } from 'vitest';
import { z } from 'zod';
import { escapeHtml } from '../src/http/html.js';
import { memoryStore, receiptOf } from '../src/index.js';
import { type ConnectClient, it } from './support/fixture.js';
import { type HttpWorld, instrumentedStore, postForm, storeOf, until } from './support/http-world.js';
import { paymentOf, textOf } from './support/paid-server.js';
import { withTestMode } from './support/test-mode.js';

const creates = (world: HttpWorld, provider: 'walleot' | 'stripe') =>
  world.sandbox[provider].requests.entries.filter((r) => r.method === 'POST' && /\/sessions$/.test(r.path))
    .length;
const stripeStatusReads = (world: HttpWorld, sessionId: string) =>
  world.sandbox.stripe.requests.entries.filter(
    (r) => r.method === 'GET' && r.path.endsWith(`/checkout/sessions/${sessionId}`),
  ).length;
const payPage = (world: HttpWorld, id: string) => `${world.publicUrl}/pay/${id}`;

/** A client without elicitation calls the 25.00 USD report: both providers are eligible. */
async function reportPayment(
  { world, connectClient }: { world: HttpWorld; connectClient: ConnectClient },
  options: Parameters<HttpWorld['makeHttpServer']>[0] = {},
) {
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
  // The one inline stylesheet is allowed by its hash; nothing inline may run.
  expect(csp).toMatch(/style-src 'sha256-[A-Za-z0-9+/]+=*'/);
  expect(csp).not.toContain('unsafe-inline');
  expect(csp).not.toContain('script-src');
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toMatch(/form-action 'self' http: https:/);
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  expect(response.headers.get('referrer-policy')).toBe('no-referrer');
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(response.headers.get('x-frame-options')).toBe('DENY');
}

describe('hosted pay page', () => {
  it('choose Stripe on the page, pay at the checkout, come back: confirm_payment returns the tool result', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { client, router, result, payment, intentId } = await reportPayment({
      world,
      connectClient,
    });
    expect(result.isError).toBe(true);
    expect(payment.payment_url).toBe(payPage(world, intentId));
    expect(payment.provider).toBeNull();
    expect(creates(world, 'walleot') + creates(world, 'stripe')).toBe(0);

    const page = await fetch(payPage(world, intentId));
    expect(page.status).toBe(200);
    expectPageHeaders(page);
    const htmlText = await page.text();
    expect(htmlText).toContain('$25.00');
    expect(htmlText).toContain('A big report');
    for (const [id, label] of [
      ['walleot', 'Walleot balance'],
      ['stripe', 'Card (Stripe Checkout)'],
    ] as const) {
      expect(textById(htmlText, `method-${id}`)).toContain(label);
      expect(htmlText).toContain(`name="method" value="${id}"`);
    }
    // The payer is not surcharged: no merchant fee shows (see "describes methods by kind and speed").
    expect(htmlText).not.toContain(escapeHtml('2.9% + 30¢'));
    expect(htmlText).toContain(`action="${escapeHtml(payPage(world, intentId))}"`);

    const chosen = await postForm(payPage(world, intentId), { method: 'stripe' });
    expect(chosen.status).toBe(303);
    const checkout = chosen.headers.get('location')!;
    expect(checkout.startsWith(`${world.sandbox.stripe.origin}/checkout/`)).toBe(true);
    expect(creates(world, 'stripe')).toBe(1);
    expect(creates(world, 'walleot')).toBe(0);

    // The pay page now offers to continue at Stripe, and still the other method.
    const pending = await (await fetch(payPage(world, intentId))).text();
    expect(pending).toContain('Continue to Card (Stripe Checkout)');
    expect(pending).toContain('name="method" value="walleot"');

    // The user pays; Stripe sends them to our return page.
    const paid = await fetch(`${checkout}/pay`, { method: 'POST', redirect: 'manual' });
    expect(paid.status).toBe(303);
    const returnUrl = paid.headers.get('location')!;
    expect(returnUrl).toBe(`${world.publicUrl}/return/${intentId}?outcome=success`);
    const sessionId = world.sandbox.stripe.listSessions()[0]!.id;
    const readsBefore = stripeStatusReads(world, sessionId);
    const back = await fetch(returnUrl);
    expect(back.status).toBe(200);
    expectPageHeaders(back);
    const backText = await back.text();
    expect(backText).toContain('Payment received');
    // The receipt the payer keeps: the same reference the ledger and the tool result carry.
    expect(backText).toContain(`<code id="receipt">${receiptOf(intentId)}</code>`);
    expect(stripeStatusReads(world, sessionId)).toBe(readsBefore + 1);
    expect((await storeOf(router).get(intentId))?.status).toBe('paid');

    const done = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: intentId },
    })) as CallToolResult;
    expect(done.isError).toBeFalsy();
    expect(textOf(done)).toBe('Report on cats (1 pages)');
    expect(world.runsOf('report')).toBe(1);

    // Paid: the page says so, offers no method, and a late POST just comes back here.
    const finished = await (await fetch(payPage(world, intentId))).text();
    expect(textById(finished, 'heading')).toBe('Paid');
    expect(textById(finished, 'status')).toBe('Return to your chat; your result is ready.');
    expect(finished).not.toContain('name="method"');
    const late = await postForm(payPage(world, intentId), { method: 'walleot' });
    expect(late.status).toBe(303);
    expect(late.headers.get('location')).toBe(payPage(world, intentId));
    expect(creates(world, 'walleot')).toBe(0);
  });

  it('switching method on the page replaces the live payment', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { router, intentId } = await reportPayment({ world, connectClient });
    const toStripe = await postForm(payPage(world, intentId), { method: 'stripe' });
    expect(toStripe.status).toBe(303);
    const toWalleot = await postForm(payPage(world, intentId), { method: 'walleot' });
    expect(toWalleot.status).toBe(303);
    expect(toWalleot.headers.get('location')!.startsWith(world.sandbox.walleot.origin)).toBe(true);
    const intent = (await storeOf(router).get(intentId))!;
    expect(intent.attempts.map((a) => a.providerId)).toEqual(['stripe', 'walleot']);
    expect(world.sandbox.stripe.listSessions()[0]?.status).toBe('expired');
    // Choosing the live method again creates nothing new.
    expect((await postForm(payPage(world, intentId), { method: 'walleot' })).status).toBe(303);
    expect(creates(world, 'walleot')).toBe(1);
  });

  it('a method that is not eligible, or no method, is refused with 400 and creates nothing', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { router, intentId } = await reportPayment({ world, connectClient });
    for (const fields of [{ method: 'paypal' }, {}, { method: '' }]) {
      const response = await postForm(payPage(world, intentId), fields as Record<string, string>);
      expect(response.status).toBe(400);
      expectPageHeaders(response);
    }
    // Walleot is configured but cannot take yen: not eligible for this intent.
    const { client } = await connectClient(world.makeHttpServer().server, { elicitation: 'none' });
    const yen = paymentOf((await client.callTool({ name: 'status_now', arguments: {} })) as CallToolResult)!;
    expect((await postForm(payPage(world, yen.payment_id), { method: 'walleot' })).status).toBe(400);

    expect(creates(world, 'walleot')).toBe(0);
    expect(creates(world, 'stripe')).toBe(1); // the yen call's own payment
    const intent = (await storeOf(router).get(intentId))!;
    expect(intent.status).toBe('requires_method');
    expect(intent.attempts).toEqual([]);
    await client.close();
  });

  it('unknown and malformed ids get 404 pages; junk never reaches the store', async ({
    httpWorld: world,
  }) => {
    const base = memoryStore();
    const instrumented = instrumentedStore(base);
    const { router } = world.makeHttpServer({ store: instrumented.store });
    const unknownId = `pay_${'A'.repeat(24)}`;
    for (const url of [payPage(world, unknownId), `${world.publicUrl}/return/${unknownId}?outcome=success`]) {
      const response = await fetch(url);
      expect(response.status).toBe(404);
      expectPageHeaders(response);
      expect(textById(await response.text(), 'heading')).toBe('Payment not found');
    }
    expect((await postForm(payPage(world, unknownId), { method: 'stripe' })).status).toBe(404);
    expect(instrumented.gets.every((id) => id === unknownId)).toBe(true);
    instrumented.gets.length = 0;

    for (const junk of ['%3Cscript%3E', 'pay_short', `pay_${'A'.repeat(23)}%00`, "pay_'OR'1'='1"]) {
      const response = await fetch(payPage(world, junk));
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

  it('a tool description with markup is shown escaped', async ({ httpWorld: world, connectClient }) => {
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
    const { client } = await connectClient(server, { elicitation: 'none' });
    const payment = paymentOf(
      (await client.callTool({ name: 'risky', arguments: { n: 1 } })) as CallToolResult,
    )!;
    const response = await fetch(payment.payment_url!);
    expect(response.status).toBe(200);
    const body = await response.text();
    expect(body).not.toContain('<script>');
    expect(body).toContain('&#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;quotes&#34;');
  });

  it('an expired payment is shown as expired, without methods', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { intentId } = await reportPayment({ world, connectClient });
    const chosen = await postForm(payPage(world, intentId), { method: 'stripe' });
    expect(chosen.status).toBe(303);
    world.sandbox.stripe.lapse(world.sandbox.stripe.listSessions()[0]!.id);
    const body = await (await fetch(payPage(world, intentId))).text();
    expect(body).toContain('This payment link expired');
    expect(body).not.toContain('name="method"');
  });

  it('other methods than GET, HEAD and POST are refused', async ({ httpWorld: world, connectClient }) => {
    const { intentId } = await reportPayment({ world, connectClient });
    const put = await fetch(payPage(world, intentId), { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
    const head = await fetch(payPage(world, intentId), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect((await fetch(`${world.publicUrl}/return/${intentId}`, { method: 'POST' })).status).toBe(405);
  });
});

describe('return page', () => {
  it('makes exactly one status read and wakes a waiting URL-mode call', async ({
    httpWorld: world,
    connectClient,
  }) => {
    // One poll a minute and no webhook target: only the return page can finish this call in time.
    const { server, router } = world.makeHttpServer({
      timeouts: { choiceMs: 5000, paymentWaitMs: 20_000 },
      confirmation: { pendingTtlMs: 50, poll: { initialMs: 60_000, maxMs: 60_000 } },
    });
    const { client, elicitations } = await connectClient(server, {
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
    expect(stripeStatusReads(world, sessionId)).toBe(1);

    const result = await call;
    expect(textOf(result)).toBe('all good');
    expect(world.runsOf('status_now')).toBe(1);
    expect(stripeStatusReads(world, sessionId)).toBe(1);
  });

  it('not paid yet (the user canceled at checkout): says so and links back to the pay page', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { intentId } = await reportPayment({ world, connectClient });
    const chosen = await postForm(payPage(world, intentId), { method: 'stripe' });
    const canceled = await fetch(`${chosen.headers.get('location')}/cancel`, {
      method: 'POST',
      redirect: 'manual',
    });
    const returnUrl = canceled.headers.get('location')!;
    expect(returnUrl).toBe(`${world.publicUrl}/return/${intentId}?outcome=cancel`);
    const body = await (await fetch(returnUrl)).text();
    expect(body).toContain('Payment not completed yet');
    expect(body).toContain('You left the checkout before paying.');
    expect(body).toContain(`href="${escapeHtml(payPage(world, intentId))}"`);
  });
});

/** The text of the first element with this id (pages mark what a payer must see with ids). */
function textById(document: string, id: string): string | undefined {
  const match = new RegExp(`<([a-z0-9]+)[^>]*\\bid="${id}"[^>]*>([\\s\\S]*?)</\\1>`).exec(document);
  return match?.[2]?.replace(/<[^>]+>/g, '').trim();
}

function providersInTestMode(world: HttpWorld, testMode: boolean) {
  const providers = world.sandbox.providers();
  return [withTestMode(providers.walleot, testMode), withTestMode(providers.stripe, testMode)];
}

describe('what a payer sees on the hosted pages (issue 12 items 4 and 7)', () => {
  it('names the server and what is paid for, by title; the heading is not the raw tool id', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const made = world.makeHttpServer({ name: 'Image Tools' });
    made.server.registerTool(
      'market_report',
      {
        title: 'Market report',
        description: 'Write a market report on a topic',
        inputSchema: { topic: z.string() },
        price: { amount: '25.00', currency: 'USD' },
      },
      async ({ topic }) => ({ content: [{ type: 'text' as const, text: `report on ${topic}` }] }),
    );
    const { client } = await connectClient(made.server, { elicitation: 'none' });
    const payment = paymentOf(
      (await client.callTool({ name: 'market_report', arguments: { topic: 'tea' } })) as CallToolResult,
    )!;
    const body = await (await fetch(payPage(world, payment.payment_id))).text();
    expect(textById(body, 'server-name')).toBe('Image Tools');
    expect(textById(body, 'title')).toBe('Market report');
    expect(textById(body, 'amount')).toBe('$25.00');
    expect(textById(body, 'heading')).not.toContain('market_report');
    expect(body).toContain('<title>Pay $25.00 to Image Tools</title>');
  });

  it('without a name option, the server is named by the host of publicUrl', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { intentId } = await reportPayment({ world, connectClient });
    const body = await (await fetch(payPage(world, intentId))).text();
    expect(textById(body, 'server-name')).toBe(new URL(world.publicUrl).host);
  });

  it('describes methods by kind and speed, and shows no merchant fee the payer does not pay', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { intentId } = await reportPayment({ world, connectClient });
    const body = await (await fetch(payPage(world, intentId))).text();
    expect(textById(body, 'method-walleot')).toBe('Walleot balance instant, from prepaid credits');
    expect(textById(body, 'method-stripe')).toBe('Card (Stripe Checkout) on a secure checkout page');
    expect(body).not.toContain('fee');
    expect(body).not.toContain(escapeHtml('2.9% + 30¢'));
  });

  it('shows the fee a surcharged payer pays, when the author says the payer pays fees', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { intentId } = await reportPayment({ world, connectClient }, { feesPaidBy: 'payer' });
    const body = await (await fetch(payPage(world, intentId))).text();
    // 2.9% of $25.00 rounded up, plus 30¢.
    expect(textById(body, 'method-stripe')).toBe(
      'Card (Stripe Checkout) on a secure checkout page, $1.03 fee',
    );
    expect(textById(body, 'method-walleot')).toBe('Walleot balance instant, from prepaid credits, no fee');
  });

  it('the sandbox providers report test mode: the pages say so', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { intentId } = await reportPayment({ world, connectClient });
    const body = await (await fetch(payPage(world, intentId))).text();
    expect(textById(body, 'test-mode')).toBe('Test mode: sandbox payments, no real money moves.');
  });

  it('a test-mode banner whenever a test-mode provider is in use, on every page; none in live mode', async ({
    httpWorld: world,
    connectClient,
  }) => {
    for (const testMode of [true, false]) {
      const { close, intentId } = await reportPayment(
        { world, connectClient },
        { providers: providersInTestMode(world, testMode) },
      );
      const unknown = `pay_${'B'.repeat(24)}`;
      for (const url of [
        payPage(world, intentId),
        `${world.publicUrl}/return/${intentId}?outcome=cancel`,
        payPage(world, unknown),
      ]) {
        const body = await (await fetch(url)).text();
        if (testMode) expect(textById(body, 'test-mode'), url).toMatch(/^Test mode/);
        else expect(body, url).not.toContain('id="test-mode"');
      }
      await close();
    }
  });

  it('the paid page says "Paid" in its heading and gives the reference to keep', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { client, intentId } = await reportPayment({ world, connectClient }, { name: 'Image Tools' });
    const chosen = await postForm(payPage(world, intentId), { method: 'stripe' });
    const checkout = chosen.headers.get('location')!;
    const paid = await fetch(`${checkout}/pay`, { method: 'POST', redirect: 'manual' });
    const back = await (await fetch(paid.headers.get('location')!)).text();
    expect(textById(back, 'heading')).toBe('Paid');
    expect(textById(back, 'reference')).toBe(intentId);
    const sessionId = world.sandbox.stripe.listSessions()[0]!.id;
    expect(textById(back, 'provider-reference')).toBe(sessionId);
    expect(textById(back, 'server-name')).toBe('Image Tools');
    expect(textById(back, 'title')).toBe('A big report');

    await client.callTool({ name: 'confirm_payment', arguments: { payment_id: intentId } });
    const page = await (await fetch(payPage(world, intentId))).text();
    expect(textById(page, 'heading')).toBe('Paid');
    expect(textById(page, 'status')).toBe('Return to your chat; your result is ready.');
    expect(textById(page, 'reference')).toBe(intentId);
  });

  it('not-found pages never push a second payment: if you paid, confirm in your chat', async ({
    httpWorld: world,
  }) => {
    const unknown = `pay_${'C'.repeat(24)}`;
    world.makeHttpServer();
    for (const response of [
      await fetch(payPage(world, unknown)),
      await fetch(`${world.publicUrl}/return/${unknown}?outcome=success`),
      await postForm(payPage(world, unknown), { method: 'stripe' }),
    ]) {
      expect(response.status).toBe(404);
      const body = await response.text();
      expect(textById(body, 'heading')).toBe('Payment not found');
      expect(body).toContain('If you paid, return to your chat and confirm the payment there.');
      expect(body).not.toMatch(/call the tool again|start a new payment|pay again/i);
    }
  });

  it('after a method was chosen in a form, the link goes straight to that checkout (303)', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const made = world.makeHttpServer();
    const { client, elicitations } = await connectClient(made.server, {
      elicitation: 'form+url',
      onElicit: (request) =>
        request.mode === 'url' ? { action: 'accept' } : { action: 'accept', content: { method: 'stripe' } },
    });
    const call = client.callTool({ name: 'report', arguments: { topic: 'form' } }) as Promise<CallToolResult>;
    await until(() => elicitations.some((e) => e.mode === 'url'), 'the payment link');
    const link = elicitations.find((e) => e.mode === 'url')!;
    const url = link.mode === 'url' ? link.url : '';
    const opened = await fetch(url, { redirect: 'manual' });
    expect(opened.status).toBe(303);
    const session = world.sandbox.stripe.listSessions()[0]!;
    expect(opened.headers.get('location')).toBe(session.url);
    expect(creates(world, 'stripe')).toBe(1);
    expect(creates(world, 'walleot')).toBe(0);

    // The page itself, opened without that link, still lets the payer switch.
    const intentId = paymentIdOf(url);
    const plain = await fetch(payPage(world, intentId), { redirect: 'manual' });
    expect(plain.status).toBe(200);
    const body = await plain.text();
    expect(body).toContain('Continue to Card (Stripe Checkout)');
    expect(body).toContain('name="method" value="walleot"');

    world.sandbox.stripe.pay(session.id);
    expect(textOf(await call)).toBe('Report on form (1 pages)');
  });

  it('with only one method and its payment made, the pay page goes straight to the checkout', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const made = world.makeHttpServer();
    const { client } = await connectClient(made.server, { elicitation: 'none' });
    const payment = paymentOf(
      (await client.callTool({ name: 'status_now', arguments: {} })) as CallToolResult,
    )!;
    const opened = await fetch(payment.payment_url!, { redirect: 'manual' });
    expect(opened.status).toBe(303);
    expect(opened.headers.get('location')).toBe(world.sandbox.stripe.listSessions()[0]!.url);
  });

  it('sandbox.pay follows a hosted link that goes straight to the checkout', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const made = world.makeHttpServer();
    const { client } = await connectClient(made.server, { elicitation: 'none' });
    const payment = paymentOf(
      (await client.callTool({ name: 'process_data', arguments: { data: 'scripted' } })) as CallToolResult,
    )!;
    const paid = await world.sandbox.pay(payment.payment_url!);
    expect(paid.checkoutUrl.startsWith(`${world.sandbox.walleot.origin}/checkout/`)).toBe(true);
    const done = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id },
    })) as CallToolResult;
    expect(textOf(done)).toBe('Processed: scripted');
  });

  it('escapes the server name too, and no page shows a secret', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { intentId } = await reportPayment(
      { world, connectClient },
      { name: '<img src=x onerror=alert(1)> & Co' },
    );
    const bodies = [
      await (await fetch(payPage(world, intentId))).text(),
      await (await fetch(`${world.publicUrl}/return/${intentId}?outcome=cancel`)).text(),
    ];
    for (const body of bodies) {
      expect(body).not.toContain('<img');
      expect(body).toContain('&#60;img src=x onerror=alert(1)&#62; &#38; Co');
      for (const secret of [
        world.sandbox.walleot.apiKey,
        world.sandbox.stripe.apiKey,
        world.sandbox.stripe.webhookSecret,
      ]) {
        expect(body).not.toContain(secret);
      }
    }
  });
});

function paymentIdOf(url: string): string {
  const id = /\/pay\/([^/?#]+)/.exec(url)?.[1];
  if (id === undefined) throw new Error(`not a pay page URL: ${url}`);
  return id;
}
