import { existsSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startHttpServer } from '../examples/http-server.js';
import { createServer as createHybrid } from '../examples/hybrid.js';
import { startProductionServer } from '../examples/production.js';
import { createServer as createStdioServer } from '../examples/stdio-server.js';
import { createServer as createWalleotOnly } from '../examples/walleot-only.js';
import { connectClient, payAt, paymentOf, textOf } from './support/paid-server.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';

const call = async (client: Client, name: string, args: Record<string, unknown>) =>
  (await client.callTool({ name, arguments: args })) as CallToolResult;

const priceOf = (tools: Tool[], name: string) => tools.find((t) => t.name === name)?._meta?.['price'];

/** Pay the way a user without elicitation does: open the link, pay, then confirm_payment. */
async function payAndConfirm(client: Client, required: CallToolResult): Promise<CallToolResult> {
  expect(required.isError, textOf(required)).toBe(true);
  const payment = paymentOf(required)!;
  await payAt(payment.payment_url!);
  return call(client, 'confirm_payment', { payment_id: payment.payment_id });
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

beforeAll(() => {
  // The examples import 'payrouter', which in this repository is the built package itself.
  if (!existsSync('dist/index.js'))
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  // The examples read provider keys from the environment: these tests run them on the sandbox.
  for (const name of ['WALLEOT_API_KEY', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET', 'PUBLIC_URL']) {
    vi.stubEnv(name, '');
  }
});
afterAll(() => {
  vi.unstubAllEnvs();
});

async function inMemoryClient(example: { server: McpServer; close(): Promise<void> }) {
  const { client } = await connectClient(example.server, { elicitation: 'none' });
  cleanups.push(async () => {
    await client.close();
    await example.close();
  });
  return client;
}

describe('examples/stdio-server.ts', () => {
  it('lists its paid tool with the price', async () => {
    const client = await inMemoryClient(await createStdioServer());
    const { tools } = await client.listTools();
    expect(priceOf(tools, 'analyze_text')).toMatchObject({ amount: '0.50', currency: 'USD' });
    expect(tools.map((t) => t.name)).toContain('confirm_payment');
  });
});

describe('examples/walleot-only.ts', () => {
  it('reads the price from _meta and completes a paid call through Walleot', async () => {
    const client = await inMemoryClient(await createWalleotOnly());
    const { tools } = await client.listTools();
    expect(priceOf(tools, 'process_data')).toMatchObject({ amount: '0.25', currency: 'USD' });

    const required = await call(client, 'process_data', { data: 'hello' });
    expect(paymentOf(required)).toMatchObject({ provider: 'walleot', amount: '0.25', alternatives: [] });
    const done = await payAndConfirm(client, required);
    expect(textOf(done)).toBe('Processed: hello');
  });

  it('runs on stdio when started directly', async () => {
    await expectStdioTools('examples/walleot-only.ts', ['process_data']);
  }, 30_000);
});

describe('examples/hybrid.ts', () => {
  it('advertises fixed and dynamic prices, honours per-tool providers, and completes a paid call', async () => {
    const example = await createHybrid();
    const client = await inMemoryClient(example);
    const { tools } = await client.listTools();
    expect(priceOf(tools, 'define_word')).toMatchObject({ amount: '0.10', currency: 'USD' });
    expect(priceOf(tools, 'buy_license')).toMatchObject({ amount: '49.00', currency: 'USD' });
    expect(priceOf(tools, 'translate_document')).toEqual({ dynamic: true });

    const eligible = async (tool: string, args: Record<string, unknown> = {}) =>
      (await example.router.explain(tool, args, { server: example.server })).eligible.map(
        (e) => e.providerId,
      );
    expect(await eligible('define_word', { word: 'x' })).toEqual(['walleot']);
    expect(await eligible('buy_license')).toEqual(['stripe']);
    expect((await eligible('translate_document', { pages: 3, language: 'fr' })).sort()).toEqual([
      'stripe',
      'walleot',
    ]);

    // 3 pages at 50 cents: the dynamic price is bound into the payment.
    const required = await call(client, 'translate_document', { pages: 3, language: 'fr' });
    expect(paymentOf(required)).toMatchObject({ amount: '1.50', currency: 'USD' });
    const done = await payAndConfirm(client, required);
    expect(textOf(done)).toBe('Translated 3 pages into fr.');
  });

  it('runs on stdio when started directly', async () => {
    await expectStdioTools('examples/hybrid.ts', ['define_word', 'translate_document', 'buy_license']);
  }, 30_000);
});

describe('examples/http-server.ts', () => {
  it('serves its paid tool over Streamable HTTP', async () => {
    const running = await startHttpServer({ port: 0 });
    const client = new Client({ name: 'examples-test', version: '1.0.0' });
    cleanups.push(async () => {
      await client.close();
      await running.close();
    });
    await client.connect(new StreamableHTTPClientTransport(new URL(running.url)));
    const { tools } = await client.listTools();
    expect(priceOf(tools, 'generate_report')).toMatchObject({ amount: '2.00', currency: 'USD' });
  });
});

describe('examples/production.ts (real redis-server)', () => {
  let redisServer: RedisServer;
  beforeAll(async () => {
    redisServer = await startRedisServer();
  });
  afterAll(async () => {
    await redisServer?.stop();
  });

  it('takes a card payment through the hosted pay page and the Stripe webhook, counted in Redis', async () => {
    const running = await startProductionServer({ port: 0, redisUrl: redisServer.url });
    const client = new Client({ name: 'examples-test', version: '1.0.0' });
    const redis = new Redis(redisServer.url);
    cleanups.push(async () => {
      await client.close();
      await running.close();
      await redis.quit();
    });
    await client.connect(new StreamableHTTPClientTransport(new URL(running.url)));
    const { tools } = await client.listTools();
    expect(priceOf(tools, 'generate_report')).toMatchObject({ amount: '2.00', currency: 'USD' });

    const required = await call(client, 'generate_report', { topic: 'harbours' });
    const payment = paymentOf(required)!;
    expect(payment.payment_url).toBe(`${running.publicUrl}/pay/${payment.payment_id}`);

    // The user opens the hosted page, picks the card and is sent to Stripe Checkout.
    const page = await fetch(payment.payment_url!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('$2.00');
    const chosen = await fetch(payment.payment_url!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'method=stripe',
      redirect: 'manual',
    });
    expect(chosen.status).toBe(303);
    const checkout = chosen.headers.get('location')!;
    expect(checkout).toContain('/checkout/cs_');
    await payAt(checkout);

    // The sandbox delivers checkout.session.completed to the mounted webhook endpoint.
    const stripe = running.sandbox!.stripe;
    await stripe.flushWebhooks();
    expect(stripe.webhookDeliveries.map((d) => [d.type, d.status])).toContainEqual([
      'checkout.session.completed',
      200,
    ]);

    const done = await call(client, 'confirm_payment', { payment_id: payment.payment_id });
    expect(textOf(done)).toBe('Report on harbours: all is well.');

    // onPaid counted the spend for the cap, in the same Redis the payments live in.
    const spentKeys = await redis.keys('spent:*');
    expect(spentKeys).toHaveLength(1);
    expect(await redis.get(spentKeys[0]!)).toBe('200');
    expect((await redis.keys('payrouter:*')).length).toBeGreaterThan(0);
  });
});

/** Start an example as a program and list its tools over stdio. */
async function expectStdioTools(file: string, paidTools: string[]): Promise<void> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', file],
    cwd: process.cwd(),
    env: getDefaultEnvironment(),
    stderr: 'pipe',
  });
  const client = new Client({ name: 'examples-test', version: '1.0.0' });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    for (const name of paidTools) expect(priceOf(tools, name), name).toBeDefined();
  } finally {
    await client.close();
  }
}
