// Invariant 7: API keys and webhook secrets never appear in logs, errors, results, pages or stored
// state. Every flow runs with debug logging on, once into a capturing logger (memoryStore) and once
// through the default console logger with DEBUG=payrouter* and stderr captured (redisStore); then
// every log line, stderr byte, tool result, HTTP answer and stored record is searched.
import { inspect } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ElicitRequest, ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import Stripe from 'stripe';
import { describe, expect } from 'vitest';
import { z } from 'zod';
import {
  type IntentRecord,
  type Logger,
  memoryStore,
  type PaymentStore,
  PayRouter,
  redisStore,
} from '../src/index.js';
import { StripeProvider, WalleotProvider } from '../src/providers.js';
import { type StripeSandbox, startStripeSandbox } from '../src/sandbox/stripe.js';
import { startWalleotSandbox, type WalleotSandbox } from '../src/sandbox/walleot.js';
import { it, test } from './support/fixture.js';
import type { listenLate } from './support/http-world.js';
import { connectClient, type Elicitation, paymentOf } from './support/paid-server.js';
import type { RedisServer } from './support/redis-server.js';

// Shaped so that only exact-secret redaction can catch them (no sk_/whsec_ prefix for the pattern
// matcher), except the Stripe key, which Stripe's SDK wants in its usual shape.
const SECRETS = {
  walleotKey: 'wk_live_Zq81SuperSecretWalleotKey',
  stripeKey: 'sk_test_51SecretStripeKeyAbc123xyz',
  webhookSecret: 'hooksecret-Xy7-TotallyPrivateSigning',
  wrongWalleotKey: 'wk_live_WrongKeyAlsoVerySecret99',
  wrongStripeKey: 'sk_test_51WrongStripeKeyAlsoSecret7',
};
/** The distinctive middle of each secret: a partly masked echo still must not carry it. */
const FRAGMENTS = [
  'SuperSecretWalleot',
  'SecretStripeKeyAbc',
  'TotallyPrivateSigning',
  'WrongKeyAlsoVery',
  'WrongStripeKeyAlso',
];

let walleot: WalleotSandbox;
let stripe: StripeSandbox;
let redis: RedisServer;
let redisClient: Redis;
let http: Awaited<ReturnType<typeof listenLate>>;
const signer = new Stripe('sk_test_signing_only');

// The redis-server and HTTP server are the fixture's (one per file, closed after afterAll); the
// stand-ins are this file's own, built with the secrets it hunts for.
test.beforeAll(async ({ redis: fileRedis, lateHttp }) => {
  [redis, http] = [fileRedis, lateHttp];
  [walleot, stripe] = await Promise.all([
    startWalleotSandbox({ apiKey: SECRETS.walleotKey }),
    startStripeSandbox({ apiKey: SECRETS.stripeKey, webhookSecret: SECRETS.webhookSecret }),
  ]);
  redisClient = new Redis(redis.url);
});
test.afterAll(async () => {
  redisClient?.disconnect();
  await Promise.all([walleot?.close(), stripe?.close()]);
});

/** Everything the flows produced that a user, an operator or a log reader could see. */
interface Seen {
  lines: string[];
  results: CallToolResult[];
  pages: string[];
  errors: string[];
  intentIds: Set<string>;
}

function expectNoSecret(where: string, text: string) {
  for (const secret of [...Object.values(SECRETS), ...FRAGMENTS]) {
    if (text.includes(secret)) {
      const at = text.indexOf(secret);
      throw new Error(`${where} leaks "${secret}": …${text.slice(Math.max(0, at - 120), at + 60)}…`);
    }
  }
}

function capturingLogger(lines: string[]): Logger {
  const line = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(
      `${level}: ${message} ${inspect(fields, { depth: 12, breakLength: Number.POSITIVE_INFINITY })}`,
    );
  };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

function recordingStore(base: PaymentStore, ids: Set<string>): PaymentStore {
  return new Proxy(base, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property === 'insert') {
        return (record: IntentRecord) => {
          ids.add(record.id);
          return target.insert(record);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Build providers and a router the way a server author would: with a logger, or the default one. */
function buildRouter(
  server: McpServer,
  options: { logger: Logger | undefined; store: PaymentStore; keys: 'right' | 'wrong' },
) {
  const logger = options.logger === undefined ? {} : { logger: options.logger };
  const providers = [
    new WalleotProvider({
      apiKey: options.keys === 'right' ? SECRETS.walleotKey : SECRETS.wrongWalleotKey,
      baseUrl: walleot.baseUrl,
      maxRetries: 0,
      ...logger,
    }),
    new StripeProvider({
      apiKey: options.keys === 'right' ? SECRETS.stripeKey : SECRETS.wrongStripeKey,
      webhookSecret: SECRETS.webhookSecret,
      stripe: { ...stripe.sdkOptions, maxNetworkRetries: 0 },
      ...logger,
    }),
  ];
  const router = new PayRouter(server, {
    providers,
    store: options.store,
    publicUrl: `${http.origin}/payrouter`,
    onToolError: 'refund',
    timeouts: { choiceMs: 3000, paymentWaitMs: 3000 },
    confirmation: { pendingTtlMs: 20, poll: { initialMs: 20, maxMs: 100 } },
    ...logger,
  });
  return { router, providers };
}

function registerTools(server: McpServer) {
  const text = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }] });
  server.registerTool(
    'credits',
    {
      description: 'Walleot only',
      inputSchema: { n: z.number() },
      price: { amount: '0.05', currency: 'USD' },
    },
    async ({ n }) => text(`credits ${n}`),
  );
  server.registerTool(
    'card',
    {
      description: 'Stripe only',
      inputSchema: { n: z.number() },
      price: { amount: '1.00', currency: 'EUR' },
    },
    async ({ n }) => text(`card ${n}`),
  );
  server.registerTool(
    'either',
    {
      description: 'Both can take it',
      inputSchema: { n: z.number() },
      price: { amount: '25.00', currency: 'USD' },
    },
    async ({ n }) => text(`either ${n}`),
  );
  server.registerTool(
    'broken',
    {
      description: 'Always fails',
      inputSchema: { n: z.number() },
      price: { amount: '1.00', currency: 'EUR' },
    },
    async () => {
      throw new Error('upstream failed');
    },
  );
}

/** Pay the live provider payment of an intent at its stand-in. */
async function payIntent(store: PaymentStore, intentId: string) {
  const attempt = (await store.get(intentId))?.attempts.at(-1);
  if (attempt?.providerId === 'walleot') walleot.setStatus(attempt.paymentId, 'paid');
  else if (attempt !== undefined && stripe.getSession(attempt.paymentId)?.status === 'open')
    stripe.pay(attempt.paymentId);
}

/** Every flow once; returns what was seen. */
async function runEveryFlow(logger: Logger | undefined, baseStore: PaymentStore, seen: Seen) {
  const store = recordingStore(baseStore, seen.intentIds);
  const servers: McpServer[] = [];
  const primary = new McpServer({ name: 'secrets', version: '1.0.0' });
  const { router } = buildRouter(primary, { logger, store, keys: 'right' });
  http.use(router.httpHandler());
  registerTools(primary);
  let primaryUsed = false;
  const connect = async (
    elicitation: Elicitation,
    onElicit?: (r: ElicitRequest['params']) => Promise<ElicitResult> | ElicitResult,
  ) => {
    const server = primaryUsed ? new McpServer({ name: 'secrets', version: '1.0.0' }) : primary;
    if (primaryUsed) {
      router.install(server);
      registerTools(server);
    }
    primaryUsed = true;
    servers.push(server);
    const connection = await connectClient(server, { elicitation, ...(onElicit ? { onElicit } : {}) });
    const call = async (name: string, args: Record<string, unknown>) => {
      const result = (await connection.client.callTool({ name, arguments: args })) as CallToolResult;
      seen.results.push(result);
      return result;
    };
    return { call, close: connection.close };
  };
  const page = async (url: string, init?: RequestInit) => {
    const response = await fetch(url, { redirect: 'manual', ...init });
    const body = await response.text();
    seen.pages.push(`${response.status} ${JSON.stringify([...response.headers])} ${body}`);
    return { status: response.status, body, location: response.headers.get('location') };
  };
  const publicUrl = `${http.origin}/payrouter`;

  // 1. No elicitation: payment-required result, pay, confirm_payment.
  const plain = await connect('none');
  const first = paymentOf(await plain.call('credits', { n: 1 }))!;
  await payIntent(store, first.payment_id);
  await plain.call('confirm_payment', { payment_id: first.payment_id });

  // 2. Form elicitation: the method choice, then the payment-required result.
  const form = await connect('form', (request) =>
    request.mode === 'url'
      ? { action: 'accept' }
      : { action: 'accept', content: { method: 'walleot', remember: false } },
  );
  const chosen = paymentOf(await form.call('either', { n: 2 }))!;
  await payIntent(store, chosen.payment_id);
  await form.call('confirm_payment', { payment_id: chosen.payment_id });

  // 3. Form + URL: choose Stripe, accept the link, pay while the call waits.
  const both = await connect('form+url', async (request) => {
    if (request.mode !== 'url') return { action: 'accept', content: { method: 'stripe', remember: true } };
    const intentId = /\/pay\/([^/?]+)/.exec(request.url)?.[1] ?? '';
    setTimeout(() => void payIntent(store, intentId), 50);
    return { action: 'accept' };
  });
  await both.call('either', { n: 3 });

  // 4. Webhook: the Stripe stand-in signs with the webhook secret; the router verifies.
  stripe.setWebhookTarget({ url: `${publicUrl}/webhooks/stripe`, duplicate: true });
  const hooked = await connect('url', async (request) => {
    const intentId = /\/pay\/([^/?]+)/.exec((request as { url: string }).url)?.[1] ?? '';
    setTimeout(() => void payIntent(store, intentId), 50);
    return { action: 'accept' };
  });
  await hooked.call('card', { n: 4 });
  await stripe.flushWebhooks();
  // A forged webhook: rejected, and the rejection is logged.
  const forged = JSON.stringify(stripe.webhookEvents.at(-1));
  await page(`${publicUrl}/webhooks/stripe`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'stripe-signature': signer.webhooks.generateTestHeaderString({
        payload: forged,
        secret: 'whsec_wrong_secret',
      }),
    },
    body: forged,
  });
  stripe.setWebhookTarget(undefined);

  // 5. Hosted pay page: choose on the page, pay at the checkout, come back to the return page.
  const hosted = await connect('none');
  const waiting = paymentOf(await hosted.call('either', { n: 5 }))!;
  await page(`${publicUrl}/pay/${waiting.payment_id}`);
  await page(`${publicUrl}/pay/${waiting.payment_id}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'method=stripe',
  });
  await payIntent(store, waiting.payment_id);
  await page(`${publicUrl}/return/${waiting.payment_id}?outcome=success`);
  await hosted.call('confirm_payment', { payment_id: waiting.payment_id });

  // 6. The tool throws: the card payment is refunded (onToolError: 'refund').
  const broken = paymentOf(await hosted.call('broken', { n: 6 }))!;
  await payIntent(store, broken.payment_id);
  await hosted.call('confirm_payment', { payment_id: broken.payment_id });

  // 7. Provider failures: both providers configured with keys they reject.
  const failing = new McpServer({ name: 'secrets-failing', version: '1.0.0' });
  const bad = buildRouter(failing, { logger, store: memoryStore(), keys: 'wrong' });
  registerTools(failing);
  const badConnection = await connectClient(failing, { elicitation: 'none' });
  for (const name of ['credits', 'card']) {
    seen.results.push((await badConnection.client.callTool({ name, arguments: { n: 7 } })) as CallToolResult);
  }
  // Direct provider calls: the errors an operator would see in a stack trace.
  for (const provider of bad.providers) {
    try {
      await provider.getPayment(provider.id === 'walleot' ? 'sess_x' : 'cs_test_x');
    } catch (error) {
      seen.errors.push(inspect(error, { depth: 12 }), String(error), JSON.stringify(error));
    }
  }
  await badConnection.close();
  await bad.router.close();

  for (const c of [plain, form, both, hooked, hosted]) await c.close();
  await router.close();
  return store;
}

function scanEverything(seen: Seen) {
  for (const [i, line] of seen.lines.entries()) expectNoSecret(`log line ${i}`, line);
  for (const [i, result] of seen.results.entries())
    expectNoSecret(`tool result ${i}`, JSON.stringify(result));
  for (const [i, page] of seen.pages.entries()) expectNoSecret(`HTTP answer ${i}`, page);
  for (const [i, error] of seen.errors.entries()) expectNoSecret(`provider error ${i}`, error);
}

/** The tool results of the flows that ran their tool, in order. */
function ran(seen: Seen): string[] {
  return seen.results
    .filter((r) => !r.isError)
    .map((r) => (r.content?.[0]?.type === 'text' ? r.content[0].text : ''));
}

function newSeen(): Seen {
  return { lines: [], results: [], pages: [], errors: [], intentIds: new Set() };
}

describe('no secret in any log line, error, result, page or stored record', () => {
  it('with a capturing logger at debug level, over memoryStore', async () => {
    const seen = newSeen();
    const store = memoryStore();
    await runEveryFlow(capturingLogger(seen.lines), store, seen);

    // The flows did happen and were logged in detail.
    expect(ran(seen)).toEqual(['credits 1', 'either 2', 'either 3', 'card 4', 'either 5']);
    expect(seen.lines.some((l) => l.includes('walleot request'))).toBe(true);
    expect(seen.lines.some((l) => l.includes('webhook rejected'))).toBe(true);
    expect(seen.lines.some((l) => l.includes('creating the provider payment failed'))).toBe(true);
    expect(seen.errors.length).toBeGreaterThan(0);
    scanEverything(seen);
    const records = await Promise.all([...seen.intentIds].map((id) => store.get(id)));
    expect(records.filter(Boolean).length).toBe(seen.intentIds.size);
    for (const [i, record] of records.entries()) expectNoSecret(`stored intent ${i}`, JSON.stringify(record));
    await store.close();
  }, 60_000);

  it('with the default logger, DEBUG=payrouter* and stderr captured, over redisStore', async () => {
    const seen = newSeen();
    const prefix = `secrets:${Date.now()}:`;
    const store = redisStore({ client: redisClient, prefix });
    const previousDebug = process.env['DEBUG'];
    const write = process.stderr.write.bind(process.stderr);
    let stderr = '';
    process.env['DEBUG'] = 'payrouter*';
    process.stderr.write = ((chunk: string | Uint8Array) => {
      stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return true;
    }) as typeof process.stderr.write;
    try {
      await runEveryFlow(undefined, store, seen);
    } finally {
      process.stderr.write = write;
      if (previousDebug === undefined) delete process.env['DEBUG'];
      else process.env['DEBUG'] = previousDebug;
    }
    expect(ran(seen)).toEqual(['credits 1', 'either 2', 'either 3', 'card 4', 'either 5']);
    expect(stderr).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z payrouter:walleot debug: walleot request/m);
    expect(stderr).toContain('walleot request');
    expect(stderr).toContain('webhook rejected');
    expectNoSecret('stderr', stderr);
    scanEverything(seen);

    // Every key the store wrote, whatever its type.
    const keys = await redisClient.keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThan(seen.intentIds.size);
    for (const key of keys) {
      const type = await redisClient.type(key);
      const value =
        type === 'string' ? await redisClient.get(key) : JSON.stringify(await redisClient.dump(key));
      expectNoSecret(`redis ${type} ${key}`, `${key} ${value}`);
    }
    await store.close();
  }, 60_000);
});
