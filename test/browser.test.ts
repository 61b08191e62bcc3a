// A real browser (Debian's Chromium, headless, via playwright-core) plays the user on the
// sandbox checkout pages and on the hosted pay and return pages.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type CallToolResult, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type SandboxServer, startSandboxServer } from '../scripts/sandbox-server.js';
import { silentLogger } from '../src/index.js';
import { isNonEmptyFile, launchChromium, screenshot } from './support/chromium.js';
import { type HttpWorld, postForm, startHttpWorld } from './support/http-world.js';
import { connectClient, paymentOf, startWorld, textOf } from './support/paid-server.js';

let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 800, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  return page;
}

describe('a client without elicitation, paying on the provider checkout in Chromium', () => {
  let world: Awaited<ReturnType<typeof startWorld>>;
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => {
    await world?.close();
  });

  it('opens payment_url, presses Pay, and confirm_payment returns the tool output', async () => {
    const { server } = world.makeServer();
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const page = await newPage();
    try {
      const required = (await client.callTool({
        name: 'process_data',
        arguments: { data: 'from chromium' },
      })) as CallToolResult;
      expect(required.isError).toBe(true);
      const payment = paymentOf(required)!;
      expect(payment).toMatchObject({ status: 'pending', provider: 'walleot', amount_display: '$0.25' });
      expect(payment.payment_url).toMatch(new RegExp(`^${world.sandbox.walleot.origin}/checkout/`));

      await page.goto(payment.payment_url!);
      await expect.poll(() => page.textContent('#amount')).toBe('$0.25');
      const checkoutShot = await screenshot(page, 'browser-walleot-checkout');
      await page.click('#pay');
      await page.waitForSelector('#status:has-text("Paid")');
      const paidShot = await screenshot(page, 'browser-walleot-paid');
      expect(isNonEmptyFile(checkoutShot)).toBe(true);
      expect(isNonEmptyFile(paidShot)).toBe(true);

      const done = (await client.callTool({
        name: 'confirm_payment',
        arguments: { payment_id: payment.payment_id },
      })) as CallToolResult;
      expect(done.isError).toBeFalsy();
      expect(textOf(done)).toBe('Processed: from chromium');
      expect(paymentOf(done)?.status).toBe('paid');
      expect(world.runsOf('process_data')).toBe(1);
    } finally {
      await page.context().close();
      await close();
    }
  });
});

describe('the hosted pay page (publicUrl): choose the card, pay on Stripe, come back', () => {
  let sandboxServer: SandboxServer;
  const runs: string[] = [];
  beforeAll(async () => {
    sandboxServer = await startSandboxServer({
      port: 0,
      sandboxPort: 0,
      logger: silentLogger,
      router: {
        timeouts: { paymentWaitMs: 20_000 },
        hooks: { onToolRun: (event) => void runs.push(event.tool) },
      },
    });
  });
  afterAll(async () => {
    await sandboxServer?.close();
  });

  it('a 25.00 USD call waiting on a URL-mode link completes once the browser returns from checkout', async () => {
    const { publicUrl, sandbox } = sandboxServer;
    const page = await newPage();
    const client = new Client(
      { name: 'browser-test-client', version: '1.0.0' },
      // URL mode but no form: nobody can ask in the chat, so the hosted pay page offers the choice.
      { capabilities: { elicitation: { url: {} } } },
    );
    const links: string[] = [];
    const shots: string[] = [];
    let browserFailure: unknown;
    let browserDone: Promise<void> | undefined;

    const userInBrowser = async (url: string) => {
      await page.goto(url);
      await page.waitForSelector('#amount:has-text("$25.00")');
      shots.push(await screenshot(page, 'browser-pay-page'));
      await Promise.all([
        page.waitForURL((u) => u.origin === sandbox.stripe.origin && u.pathname.startsWith('/checkout/cs_')),
        page.locator('button[data-method="stripe"]', { hasText: 'Card' }).click(),
      ]);
      await page.waitForSelector('#amount:has-text("$25.00")');
      shots.push(await screenshot(page, 'browser-stripe-checkout'));
      await Promise.all([
        page.waitForURL((u) => u.origin === publicUrl && u.pathname.startsWith('/return/')),
        page.click('#pay'),
      ]);
      await page.waitForSelector('#status[data-status="paid"]');
      shots.push(await screenshot(page, 'browser-return-page'));
    };

    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      if (request.params.mode !== 'url') return { action: 'decline' };
      links.push(request.params.url);
      // Accepting only means "I'll open it"; the call keeps waiting while the user pays.
      browserDone = userInBrowser(request.params.url).catch((error: unknown) => {
        browserFailure = error;
      });
      return { action: 'accept' };
    });
    await client.connect(new StreamableHTTPClientTransport(new URL(sandboxServer.mcpUrl)));
    try {
      const result = (await client.callTool(
        { name: 'market_report', arguments: { topic: 'tea' } },
        undefined,
        { timeout: 45_000 },
      )) as CallToolResult;
      await browserDone;
      if (browserFailure !== undefined) throw browserFailure;

      expect(links).toHaveLength(1);
      expect(links[0]).toMatch(new RegExp(`^${publicUrl}/pay/pay_`));
      expect(result.isError, textOf(result)).toBeFalsy();
      expect(textOf(result)).toBe('Market report on tea: demand is up, supply is flat.');
      expect(paymentOf(result)).toMatchObject({
        status: 'paid',
        provider: 'stripe',
        amount_display: '$25.00',
      });
      expect(runs).toEqual(['market_report']);
      // The card was chosen on the page: one Stripe session, no Walleot payment.
      expect(sandbox.stripe.listSessions()).toHaveLength(1);
      expect(sandbox.walleot.requests.entries.filter((r) => r.method === 'POST')).toHaveLength(0);
      expect(shots).toHaveLength(3);
      for (const shot of shots) expect(isNonEmptyFile(shot), shot).toBe(true);
      await expect.poll(() => page.textContent('#status')).toMatch(/Return to your chat/);
    } finally {
      await page.context().close();
      await client.close();
    }
  });
});

/** The two sizes every hosted page must work at: a laptop and a phone. */
const VIEWPORTS = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
] as const;

/** Measured in the page (a string: this project compiles without the DOM library). */
const MEASURE_LAYOUT = `(() => {
  const main = document.querySelector('main').getBoundingClientRect();
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    mainLeft: main.left,
    mainRight: main.right,
    fontSize: Number.parseFloat(getComputedStyle(document.body).fontSize),
  };
})()`;
const layoutSchema = z.object({
  scrollWidth: z.number(),
  innerWidth: z.number(),
  mainLeft: z.number(),
  mainRight: z.number(),
  fontSize: z.number(),
});

/** What a hosted page must show, checked in the rendered page (not in the HTML source). */
interface Expected {
  heading: string;
  amount?: string;
  title?: string;
  reference?: string;
  status?: RegExp;
}

describe('every hosted page in Chromium at 1280x800 and 390x844 (issue 12 item 7)', () => {
  let world: HttpWorld;
  let made: ReturnType<HttpWorld['makeHttpServer']>;
  let client: Awaited<ReturnType<typeof connectClient>>;
  beforeAll(async () => {
    world = await startHttpWorld();
    // The sandbox stand-ins move no real money: their providers report testMode, so every page
    // must show the banner.
    made = world.makeHttpServer({ name: 'Image Tools' });
    made.server.registerTool(
      'market_report',
      {
        title: 'Market report',
        description: 'Write a market report on a topic',
        inputSchema: { topic: z.string() },
        price: { amount: '25.00', currency: 'USD' },
      },
      async ({ topic }) => ({ content: [{ type: 'text' as const, text: `Market report on ${topic}` }] }),
    );
    client = await connectClient(made.server, { elicitation: 'none' });
  });
  afterAll(async () => {
    await client?.close();
    await world?.close();
  });

  async function startPayment(name: string, args: Record<string, unknown>) {
    const result = (await client.client.callTool({ name, arguments: args })) as CallToolResult;
    const payment = paymentOf(result);
    if (payment === undefined) throw new Error(`no payment in: ${textOf(result)}`);
    return payment;
  }

  /** Open `url` at both sizes, check what it shows and that it fits, save a screenshot of each. */
  async function shoot(name: string, url: string, expected: Expected, status = 200) {
    for (const viewport of VIEWPORTS) {
      const context = await browser.newContext({ viewport });
      const page = await context.newPage();
      page.setDefaultTimeout(15_000);
      try {
        const response = await page.goto(url);
        expect(response?.status(), `${name} ${url}`).toBe(status);
        const text = async (selector: string) => {
          const locator = page.locator(selector);
          expect(await locator.isVisible(), `${name}: ${selector} is visible`).toBe(true);
          return (await locator.textContent())?.trim();
        };
        expect(await text('#heading')).toBe(expected.heading);
        expect(await text('#server-name')).toBe('Image Tools');
        expect(await page.locator('#test-mode').isVisible()).toBe(true);
        expect(await text('#test-mode')).toMatch(/^Test mode/);
        if (expected.amount !== undefined) expect(await text('#amount')).toBe(expected.amount);
        if (expected.title !== undefined) expect(await text('#title')).toBe(expected.title);
        if (expected.reference !== undefined) expect(await text('#reference')).toBe(expected.reference);
        if (expected.status !== undefined) expect(await text('#status')).toMatch(expected.status);
        // Fits the width: no horizontal scrolling, the card inside the viewport, text readable.
        const layout = layoutSchema.parse(await page.evaluate(MEASURE_LAYOUT));
        expect(layout.scrollWidth, `${name} at ${viewport.width}px scrolls sideways`).toBeLessThanOrEqual(
          layout.innerWidth,
        );
        expect(layout.mainLeft).toBeGreaterThanOrEqual(0);
        expect(layout.mainRight).toBeLessThanOrEqual(viewport.width);
        expect(layout.fontSize).toBeGreaterThanOrEqual(16);
        const shot = await screenshot(page, `page-${name}-${viewport.width}x${viewport.height}`);
        expect(isNonEmptyFile(shot)).toBe(true);
      } finally {
        await context.close();
      }
    }
  }

  it('choice, return success and paid: the payer chooses the card, pays at Stripe, confirms in the chat', async () => {
    const payment = await startPayment('market_report', { topic: 'tea' });
    const payUrl = `${world.publicUrl}/pay/${payment.payment_id}`;
    expect(payment.payment_url).toBe(payUrl);
    await shoot('choice', payUrl, {
      heading: 'Market report',
      amount: '$25.00',
      reference: payment.payment_id,
      status: /^Choose how you would like to pay\.$/,
    });

    // The payer, in Chromium: pick the card, pay at the Stripe stand-in, come back.
    const context = await browser.newContext({ viewport: VIEWPORTS[0] });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    try {
      await page.goto(payUrl);
      expect(await page.locator('#method-walleot .label').textContent()).toBe('Walleot balance');
      expect(await page.locator('#method-walleot .detail').textContent()).toBe(
        'instant, from prepaid credits',
      );
      await Promise.all([
        page.waitForURL((u) => u.origin === world.sandbox.stripe.origin),
        page.click('#method-stripe'),
      ]);
      await Promise.all([
        page.waitForURL((u) => u.href.startsWith(`${world.publicUrl}/return/`)),
        page.click('#pay'),
      ]);
      expect(await page.locator('#heading').textContent()).toBe('Paid');
    } finally {
      await context.close();
    }
    const sessionId = world.sandbox.stripe.listSessions().at(-1)!.id;
    await shoot('return-success', `${world.publicUrl}/return/${payment.payment_id}?outcome=success`, {
      heading: 'Paid',
      amount: '$25.00',
      title: 'Market report',
      reference: payment.payment_id,
      status: /^Payment received\. Return to your chat/,
    });
    for (const viewport of VIEWPORTS) {
      const context = await browser.newContext({ viewport });
      const page = await context.newPage();
      await page.goto(`${world.publicUrl}/return/${payment.payment_id}?outcome=success`);
      expect(await page.locator('#provider-reference').textContent()).toBe(sessionId);
      await context.close();
    }

    const done = (await client.client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id },
    })) as CallToolResult;
    expect(textOf(done)).toBe('Market report on tea');
    await shoot('paid', payUrl, {
      heading: 'Paid',
      amount: '$25.00',
      title: 'Market report',
      reference: payment.payment_id,
      status: /^Return to your chat; your result is ready\.$/,
    });
  });

  it('return cancel: the payer leaves the Stripe checkout; the page says nothing was charged', async () => {
    const payment = await startPayment('market_report', { topic: 'coffee' });
    const chosen = await postForm(`${world.publicUrl}/pay/${payment.payment_id}`, { method: 'stripe' });
    const context = await browser.newContext({ viewport: VIEWPORTS[1] });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    try {
      await page.goto(chosen.headers.get('location')!);
      await Promise.all([
        page.waitForURL((u) => u.href.startsWith(`${world.publicUrl}/return/`)),
        page.click('#cancel'),
      ]);
      expect(page.url()).toBe(`${world.publicUrl}/return/${payment.payment_id}?outcome=cancel`);
    } finally {
      await context.close();
    }
    await shoot('return-cancel', `${world.publicUrl}/return/${payment.payment_id}?outcome=cancel`, {
      heading: 'Payment not completed yet',
      amount: '$25.00',
      title: 'Market report',
      reference: payment.payment_id,
      status: /^You left the checkout before paying\. Nothing was charged\.$/,
    });
    // Back on the pay page: continue with the card, or pay another way.
    await shoot('choice-after-cancel', `${world.publicUrl}/pay/${payment.payment_id}`, {
      heading: 'Market report',
      amount: '$25.00',
      reference: payment.payment_id,
      status: /^Waiting for your payment\.$/,
    });
  });

  it('single method: one way to pay, offered again after the provider could not start it', async () => {
    // Walleot is down when the call comes: nothing is created, the payer gets the page to retry.
    world.sandbox.walleot.fail({ status: 503, count: 5 });
    const payment = await startPayment('process_data', { data: 'one method' });
    world.sandbox.reset();
    const payUrl = `${world.publicUrl}/pay/${payment.payment_id}`;
    await shoot('single-method', payUrl, {
      heading: 'Process data',
      amount: '$0.25',
      reference: payment.payment_id,
      status: /^Pay with Walleot balance\.$/,
    });
    const context = await browser.newContext({ viewport: VIEWPORTS[1] });
    const page = await context.newPage();
    try {
      await page.goto(payUrl);
      expect(await page.locator('form button').count()).toBe(1);
      expect(await page.locator('#method-walleot .label').textContent()).toBe('Walleot balance');
    } finally {
      await context.close();
    }
  });

  it('not found: after a restart, the page sends a payer who paid back to the chat', async () => {
    await shoot(
      'not-found',
      `${world.publicUrl}/pay/pay_${'Z'.repeat(24)}`,
      {
        heading: 'Payment not found',
        status: /If you paid, return to your chat and confirm the payment there\./,
      },
      404,
    );
  });
});
