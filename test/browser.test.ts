// A real browser (Debian's Chromium, headless, via playwright-core) plays the user on the
// sandbox checkout pages and on the hosted pay and return pages.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type CallToolResult, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxServer, startSandboxServer } from '../scripts/sandbox-server.js';
import { silentLogger } from '../src/index.js';
import { isNonEmptyFile, launchChromium, screenshot } from './support/chromium.js';
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
