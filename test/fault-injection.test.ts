// Provider faults at ~20% of user actions (HTTP 500, 429, hangs past small provider timeouts,
// malformed JSON, slow answers) on both stand-ins, over many paid calls. Every call must end in a
// correct, clearly worded state: the tool ran exactly once iff the user paid, otherwise a
// payment-required or "provider not reachable" result; and no call hangs (each tools/call carries
// a client-side request timeout, so a hang fails the test).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect } from 'vitest';
import { z } from 'zod';
import { type IntentRecord, memoryStore, type PaymentStore, PayRouter, silentLogger } from '../src/index.js';
import { StripeProvider, WalleotProvider } from '../src/providers.js';
import type { Fault } from '../src/sandbox/harness.js';
import type { Sandbox } from '../src/sandbox.js';
import { it, test } from './support/fixture.js';
import { connectClient, paymentOf, textOf } from './support/paid-server.js';

/** Provider deadline per HTTP attempt: a hang costs this (times the one retry), not minutes. */
const PROVIDER_TIMEOUT_MS = 400;
/** A tools/call that has not answered by then has hung. */
const CALL_TIMEOUT_MS = 20_000;
const JOURNEYS_PER_PROVIDER = 40;
const FAULT_RATE = 0.2;

let sandbox: Sandbox;
let router: PayRouter;
let store: PaymentStore;
let call: (name: string, args: Record<string, unknown>) => Promise<CallToolResult>;
let closeClient: () => Promise<void>;
let walleot: WalleotProvider;
const runs: Array<{ tool: string; n: number }> = [];

/** A seeded PRNG (mulberry32), so the fault pattern is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FAULTS: ReadonlyArray<{ name: string; fault: Fault }> = [
  { name: '500', fault: { status: 500 } },
  { name: '429', fault: { status: 429, headers: { 'retry-after': '1' } } },
  { name: 'hang', fault: { kind: 'hang' } },
  { name: 'malformed', fault: { kind: 'malformed' } },
  { name: 'slow', fault: { delayMs: 150 } },
  { name: 'slower than the timeout', fault: { delayMs: PROVIDER_TIMEOUT_MS + 300 } },
];

type Outcome = 'ran' | 'pending' | 'unknown' | 'provider_failure';

/** What the user was told, read from the result's own text and payment object. */
function classify(result: CallToolResult, expected: string): Outcome {
  const text = textOf(result);
  const status = paymentOf(result)?.status;
  if (!result.isError && text === expected) return 'ran';
  if (result.isError && status === 'pending' && /Payment required|not complete yet/.test(text))
    return 'pending';
  if (result.isError && status === 'unknown' && /could not reach the payment provider/.test(text)) {
    expect(text).toContain('Nothing has run');
    return 'unknown';
  }
  if (
    result.isError &&
    /not reachable|did not answer in time|busy right now|could not read/.test(text) &&
    text.includes('Nothing was charged')
  ) {
    return 'provider_failure';
  }
  throw new Error(`unexpected result for "${expected}": ${JSON.stringify(result)}`);
}

// The sandbox is the fixture's (one per file, closed after afterAll).
test.beforeAll(async ({ sandbox: fileSandbox }) => {
  sandbox = fileSandbox;
  walleot = new WalleotProvider({
    apiKey: sandbox.walleot.apiKey,
    baseUrl: sandbox.walleot.baseUrl,
    timeoutMs: PROVIDER_TIMEOUT_MS,
    maxRetries: 1,
    logger: silentLogger,
  });
  const stripe = new StripeProvider({
    apiKey: sandbox.stripe.apiKey,
    stripe: { ...sandbox.stripe.sdkOptions, timeout: PROVIDER_TIMEOUT_MS, maxNetworkRetries: 1 },
    logger: silentLogger,
  });
  const server = new McpServer({ name: 'faults', version: '1.0.0' });
  store = memoryStore();
  router = new PayRouter(server, {
    store,
    providers: [walleot, stripe],
    flow: 'two_step',
    logger: silentLogger,
    timeouts: { choiceMs: 1000, paymentWaitMs: 300 },
    confirmation: { pendingTtlMs: 20, poll: { initialMs: 20, maxMs: 100 } },
    // One connection plays every payer here, leaving many payments unpaid on purpose.
    limits: { openPerSubject: 10_000 },
  });
  const tool = (name: string, price: { amount: string; currency: string }) =>
    server.registerTool(name, { description: name, inputSchema: { n: z.number() }, price }, async ({ n }) => {
      runs.push({ tool: name, n });
      return { content: [{ type: 'text', text: `${name} ${n}` }] };
    });
  tool('credits', { amount: '0.05', currency: 'USD' }); // only Walleot: Stripe's minimum is 0.50
  tool('card', { amount: '1.00', currency: 'EUR' }); // only Stripe: Walleot has no EUR
  const connected = await connectClient(server, { elicitation: 'none' });
  call = (name, args) =>
    connected.client.callTool({ name, arguments: args }, undefined, {
      timeout: CALL_TIMEOUT_MS,
    }) as Promise<CallToolResult>;
  closeClient = connected.close;
});

test.afterAll(async () => {
  await closeClient?.();
  await router?.close();
  await walleot?.close();
});

/** Whether the stand-in holds this provider payment as paid. */
function paidAtSandbox(providerId: string, paymentId: string): boolean {
  return providerId === 'walleot'
    ? sandbox.walleot.getSession(paymentId)?.status === 'paid'
    : sandbox.stripe.getSession(paymentId)?.payment_status === 'paid';
}

/** One user's paid call under faults; returns what happened for the final checks. */
async function journey(
  provider: 'walleot' | 'stripe',
  tool: 'credits' | 'card',
  n: number,
  random: () => number,
): Promise<{ paid: boolean; outcomes: Outcome[]; intent: IntentRecord | undefined }> {
  const expected = `${tool} ${n}`;
  const outcomes: Outcome[] = [];
  const maybeFault = () => {
    if (random() >= FAULT_RATE) return;
    const { fault } = FAULTS[Math.floor(random() * FAULTS.length)]!;
    sandbox[provider].fail(fault);
  };

  // 1. Start the call; a provider failure says so, charges nothing, and the retry reuses the intent.
  let paymentId: string | undefined;
  for (let attempt = 0; attempt < 6 && paymentId === undefined; attempt++) {
    maybeFault();
    const result = await call(tool, { n });
    const outcome = classify(result, expected);
    outcomes.push(outcome);
    expect(outcome).not.toBe('ran');
    if (outcome === 'pending') paymentId = paymentOf(result)!.payment_id;
  }
  expect(paymentId, `call ${expected} never got a payment link: ${outcomes.join(', ')}`).toBeDefined();
  const intent = (await store.get(paymentId!))!;
  const attempt = intent.attempts.at(-1)!;

  // 2. The user pays (60%) or walks away.
  const pays = random() < 0.6;
  if (pays) {
    if (provider === 'walleot') sandbox.walleot.setStatus(attempt.paymentId, 'paid');
    else sandbox.stripe.pay(attempt.paymentId);
  }

  // 3. confirm_payment until the answer is final for the user: ran, or still not paid.
  let final: Outcome | undefined;
  for (let attempt = 0; attempt < 8 && final === undefined; attempt++) {
    maybeFault();
    const result = await call('confirm_payment', { payment_id: paymentId });
    const outcome = classify(result, expected);
    outcomes.push(outcome);
    if (outcome === 'ran' || (outcome === 'pending' && !pays)) final = outcome;
  }
  expect(final, `confirm of ${expected} (paid: ${pays}): ${outcomes.join(', ')}`).toBe(
    pays ? 'ran' : 'pending',
  );
  return { paid: pays, outcomes, intent: await store.get(paymentId!) };
}

/** How many requests a "down" provider fails; the rest are used up by bringWalleotBackUp. */
const DOWN_REQUESTS = 40;

/** Use up the injected 503s left in the stand-in's queue (sandbox.reset() would also drop the sessions). */
async function bringWalleotBackUp(): Promise<void> {
  for (let i = 0; i <= DOWN_REQUESTS; i++) {
    const response = await fetch(`${sandbox.walleot.baseUrl}/sessions/sess_probe`, {
      headers: { authorization: `Bearer ${sandbox.walleot.apiKey}` },
    });
    await response.text();
    if (response.status !== 503) return;
  }
  throw new Error('the Walleot stand-in still answers 503');
}

describe('provider faults on ~20% of user actions', () => {
  it('every call ends ran-once-iff-paid or with a clear unpaid / unreachable answer, on both providers', async () => {
    const lanes = (
      [
        ['walleot', 'credits', 7],
        ['stripe', 'card', 11],
      ] as const
    ).map(async ([provider, tool, seed]) => {
      const random = prng(seed);
      const results = [];
      for (let n = 0; n < JOURNEYS_PER_PROVIDER; n++) results.push(await journey(provider, tool, n, random));
      return { provider, tool, results };
    });
    for (const { provider, tool, results } of await Promise.all(lanes)) {
      results.forEach(({ paid, intent }, n) => {
        const ran = runs.filter((r) => r.tool === tool && r.n === n).length;
        expect(ran, `${tool} ${n} (paid: ${paid})`).toBe(paid ? 1 : 0);
        expect(intent?.status).toBe(paid ? 'paid' : 'pending');
        // One charge at most: the only provider payment ever paid is the one the user was shown.
        const paidAttempts = intent!.attempts.filter((a) => paidAtSandbox(a.providerId, a.paymentId));
        expect(paidAttempts).toHaveLength(paid ? 1 : 0);
      });
      // The faults did happen: some answers were not the happy path.
      const unhappy = results
        .flatMap((r) => r.outcomes)
        .filter((o) => o === 'unknown' || o === 'provider_failure');

      expect(unhappy.length, `${provider}: faults that reached the user`).toBeGreaterThan(0);
    }
  }, 120_000);

  it('a provider that is down: nothing is charged or run, the user is told, and recovery completes the call', async () => {
    const expected = 'credits 1000';
    // Every request fails while the provider is "down".
    sandbox.walleot.fail({ status: 503, count: DOWN_REQUESTS });
    const down = await call('credits', { n: 1000 });
    expect(classify(down, expected)).toBe('provider_failure');
    expect(textOf(down)).toContain('Call credits again to retry');
    await bringWalleotBackUp();
    const started = await call('credits', { n: 1000 });
    const payment = paymentOf(started)!;
    expect(payment.status).toBe('pending');
    const intent = (await store.get(payment.payment_id))!;
    sandbox.walleot.setStatus(intent.attempts.at(-1)!.paymentId, 'paid');

    sandbox.walleot.fail({ status: 503, count: DOWN_REQUESTS }); // down again, after the user paid
    const unknown = await call('confirm_payment', { payment_id: payment.payment_id });
    expect(classify(unknown, expected)).toBe('unknown');
    expect(runs.filter((r) => r.n === 1000)).toHaveLength(0);
    expect((await store.get(payment.payment_id))?.status).toBe('pending');

    await bringWalleotBackUp();
    // The 503s may have paused reads briefly; the next confirmations get through.
    let done: CallToolResult | undefined;
    for (let i = 0; i < 10 && (done === undefined || done.isError); i++) {
      done = await call('confirm_payment', { payment_id: payment.payment_id });
    }
    expect(textOf(done!)).toBe(expected);
    expect(runs.filter((r) => r.n === 1000)).toHaveLength(1);
  }, 60_000);
});
