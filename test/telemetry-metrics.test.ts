// Metrics read with an in-memory metric reader over real parts (SDK clients, the sandbox
// stand-ins over HTTP, redis-server): every provider request timed by operation, the status-read
// budget's use, and how payments ended counted once however many instances share the store.
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Attributes } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { x402Client } from '@x402/core/client';
import type { PaymentRequired } from '@x402/core/types';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { memoryStore, PayRouter, type PayRouterOptions } from '../src/index.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import {
  connectUser,
  endpointsOf,
  type Instance,
  registerReportTool,
  startInstance,
  type UserClient,
} from './support/instances.js';
import { checkoutUrlOf, connectClient, payAt, paymentOf, startWorld, textOf } from './support/paid-server.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

interface Point {
  attributes: Attributes;
  /** A counter's or gauge's value, a histogram's count. */
  value: number;
}

/** A meter provider and its reader; `points(name)` collects and returns that metric's points. */
function meters() {
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    meterProvider,
    async points(name: string): Promise<Point[]> {
      const { resourceMetrics } = await reader.collect();
      const out: Point[] = [];
      for (const scope of resourceMetrics.scopeMetrics)
        for (const metric of scope.metrics) {
          if (metric.descriptor.name !== name) continue;
          for (const point of metric.dataPoints) {
            const value = point.value as number | { count: number };
            out.push({
              attributes: point.attributes,
              value: typeof value === 'number' ? value : value.count,
            });
          }
        }
      return out;
    },
    close: () => meterProvider.shutdown(),
  };
}

const total = (points: Point[], where: Attributes = {}) =>
  points
    .filter((p) => Object.entries(where).every(([k, v]) => p.attributes[k] === v))
    .reduce((sum, p) => sum + p.value, 0);

/** Sorted `provider:operation` of every point, for the duration histogram. */
const operations = (points: Point[]) =>
  [
    ...new Set(
      points.map((p) => `${p.attributes['payrouter.provider']}:${p.attributes['payrouter.operation']}`),
    ),
  ].sort();

/** What an x402 client reads: structuredContent when it is a PaymentRequired, else content[0].text. */
function paymentRequiredOf(result: CallToolResult): PaymentRequired {
  const structured = result.structuredContent as Record<string, unknown> | undefined;
  if (structured?.['x402Version'] !== undefined) return structured as unknown as PaymentRequired;
  const first = result.content[0];
  if (first?.type !== 'text') throw new Error('no x402 requirements');
  return JSON.parse(first.text) as PaymentRequired;
}

const auth = (sub: string): AuthInfo => ({ token: `t-${sub}`, clientId: 'test', scopes: [], extra: { sub } });

describe('provider requests as metrics, every operation', () => {
  let world: Awaited<ReturnType<typeof startWorld>>;
  const closers: Array<() => Promise<void>> = [];
  beforeEach(async () => {
    world = await startWorld();
  });
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
    await world.close();
  });

  async function payer(sub: string, options: Partial<PayRouterOptions>) {
    const m = meters();
    closers.push(m.close);
    const { server, router } = world.makeServer({
      flow: 'two_step',
      telemetry: { meterProvider: m.meterProvider },
      ...options,
    });
    const { client, close } = await connectClient(server, { elicitation: 'none', authInfo: auth(sub) });
    closers.push(close);
    const call = (name: string, args: Record<string, unknown>, meta?: Record<string, unknown>) =>
      client.callTool({ name, arguments: args, ...(meta ? { _meta: meta } : {}) }) as Promise<CallToolResult>;
    return { call, router, m };
  }

  it('Walleot and Stripe: create, status, cancel and refund are timed by operation; a failed read is counted', async () => {
    const { stripe, walleot } = world.sandbox.providers();
    // Stripe first for the report tool; process_data is Walleot's only.
    const { call, router, m } = await payer('olga', {
      providers: [stripe, walleot],
      routing: { policy: 'first' },
    });

    // Walleot: created, a status read that fails (503), one that finds it paid; the tool runs.
    const w = paymentOf(await call('process_data', { data: 'w' }))!;
    await payAt(checkoutUrlOf(w));
    world.sandbox.walleot.fail({ status: 503, count: 3 });
    expect(await router.checkPayment(w.payment_id)).not.toBe('paid');
    expect(await router.checkPayment(w.payment_id)).toBe('paid');
    expect(textOf(await call('confirm_payment', { payment_id: w.payment_id }))).toBe('Processed: w');

    // Stripe: one payment canceled, one paid and refunded.
    const canceled = paymentOf(await call('report', { topic: 'a' }))!;
    await router.cancel(canceled.payment_id);
    const paid = paymentOf(await call('report', { topic: 'b' }))!;
    await payAt(checkoutUrlOf(paid));
    expect(textOf(await call('confirm_payment', { payment_id: paid.payment_id }))).toBe(
      'Report on b (1 pages)',
    );
    await router.refund(paid.payment_id, { reason: 'test' });

    const durations = await m.points('payrouter.provider.duration');
    const walleotDurations = durations.filter((p) => p.attributes['payrouter.provider'] === 'walleot');
    expect(operations(walleotDurations)).toEqual(['walleot:create', 'walleot:status']);
    expect(total(walleotDurations, { 'payrouter.operation': 'create' })).toBe(1);
    expect(total(walleotDurations, { 'payrouter.operation': 'status' })).toBeGreaterThanOrEqual(2);
    const errors = await m.points('payrouter.provider.errors');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.attributes).toMatchObject({
      'payrouter.provider': 'walleot',
      'payrouter.operation': 'status',
    });
    expect(errors[0]!.attributes['payrouter.error']).toEqual(expect.any(String));
    expect(errors[0]!.value).toBe(1);

    const stripeDurations = durations.filter((p) => p.attributes['payrouter.provider'] === 'stripe');
    expect(operations(stripeDurations)).toEqual([
      'stripe:cancel',
      'stripe:create',
      'stripe:refund',
      'stripe:status',
    ]);
    expect(total(stripeDurations, { 'payrouter.operation': 'create' })).toBe(2);
    expect(total(stripeDurations, { 'payrouter.operation': 'cancel' })).toBe(1);
    expect(total(stripeDurations, { 'payrouter.operation': 'refund' })).toBe(1);
  });

  it('x402: verify and settle are timed; a settlement the facilitator declines counts as an error', async () => {
    const quiet = { debug() {}, info() {}, warn() {}, error() {} };
    const m = meters();
    closers.push(m.close);
    const server = new McpServer({ name: 'x402-tools', version: '1.0.0' });
    const router = new PayRouter(server, {
      store: memoryStore(),
      providers: [
        world.sandbox.providers({ logger: quiet }).walleot,
        world.sandbox.x402Provider({ logger: quiet }),
      ],
      logger: quiet,
      telemetry: { meterProvider: m.meterProvider },
    });
    closers.push(() => router.close());
    server.registerTool(
      'cheap',
      { description: 'Cheap', inputSchema: { n: z.number() }, price: { amount: '0.25', currency: 'USD' } },
      async ({ n }) => ({ content: [{ type: 'text', text: `cheap ${n}` }] }),
    );
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    closers.push(close);
    const call = (name: string, args: Record<string, unknown>, meta?: Record<string, unknown>) =>
      client.callTool({ name, arguments: args, ...(meta ? { _meta: meta } : {}) }) as Promise<CallToolResult>;
    const agent = new x402Client().register(
      'eip155:84532',
      new ExactEvmScheme(world.sandbox.x402.newWallet().account),
    );
    const pays = async (n: number) => {
      const first = await call('cheap', { n });
      const payload = await agent.createPaymentPayload(paymentRequiredOf(first));
      return call('cheap', { n }, { 'x402/payment': payload });
    };
    expect(textOf(await pays(1))).toBe('cheap 1');
    world.sandbox.x402.failNextSettle('invalid_exact_evm_insufficient_balance');
    expect((await pays(2)).isError).toBe(true);

    const durations = (await m.points('payrouter.provider.duration')).filter(
      (p) => p.attributes['payrouter.provider'] === 'x402',
    );
    expect(operations(durations)).toEqual(['x402:create', 'x402:settle', 'x402:status', 'x402:verify']);
    expect(total(durations, { 'payrouter.operation': 'verify' })).toBe(2);
    expect(total(durations, { 'payrouter.operation': 'settle' })).toBe(2);
    const errors = await m.points('payrouter.provider.errors');
    expect(errors.map((e) => [e.attributes, e.value])).toEqual([
      [
        {
          'payrouter.provider': 'x402',
          'payrouter.operation': 'settle',
          'payrouter.error': 'settlement_failed',
        },
        1,
      ],
    ]);
  });
});

describe('the status-read budget as metrics', () => {
  let world: Awaited<ReturnType<typeof startWorld>>;
  beforeEach(async () => {
    world = await startWorld();
  });
  afterEach(async () => {
    await world.close();
  });

  it('reads granted, queued and abandoned are counted; the gauges show the bucket spent and the queue', async () => {
    const m = meters();
    // Walleot allows 1000 status reads a minute; 0.3% of that is a bucket of one read.
    const { server } = world.makeServer({
      telemetry: { meterProvider: m.meterProvider },
      timeouts: { choiceMs: 5000, paymentWaitMs: 1500 },
      confirmation: { budgetShare: 0.003, pendingTtlMs: 50, poll: { initialMs: 20, maxMs: 100 } },
    });
    // The payer accepts the link and never pays: the call waits, polling under the budget.
    const { client, close } = await connectClient(server, {
      elicitation: 'url',
      onElicit: async () => ({ action: 'accept' }),
    });
    const gauge = async (name: string) => total(await m.points(name), { 'payrouter.provider': 'walleot' });
    const call = client.callTool({
      name: 'process_data',
      arguments: { data: 'x' },
    }) as Promise<CallToolResult>;

    await vi.waitFor(async () => expect(await gauge('payrouter.rate_budget.queued')).toBe(1), {
      timeout: 5000,
      interval: 20,
    });
    expect(await gauge('payrouter.rate_budget.used')).toBeGreaterThan(0.9);
    expect(paymentOf(await call)?.status).toBe('pending');

    const reads = await m.points('payrouter.rate_budget.reads');
    const by = (outcome: string) =>
      total(reads, { 'payrouter.provider': 'walleot', 'payrouter.rate_budget.outcome': outcome });
    expect(by('granted')).toBeGreaterThanOrEqual(1);
    expect(by('queued')).toBeGreaterThanOrEqual(1);
    // The call's wait ended with its read still queued.
    expect(by('abandoned')).toBeGreaterThanOrEqual(1);
    expect(await gauge('payrouter.rate_budget.queued')).toBe(0);
    await close();
    await m.close();
  });
});

/**
 * Two routers on one store, each with its own meters: a payment paid (both instances reading it
 * at once), one canceled, one refunded. Each end is counted once over both, by the instance whose
 * write made it.
 */
async function endsCountedOnce(
  a: { call: Call; router: RouterLike; m: Meters },
  b: { call: Call; router: RouterLike; m: Meters },
  pay: (paymentId: string) => Promise<void>,
) {
  const paid = paymentOf(await a.call('report', { topic: 'paid' }))!;
  await pay(paid.payment_id);
  expect(
    await Promise.all([a.router.checkPayment(paid.payment_id), b.router.checkPayment(paid.payment_id)]),
  ).toEqual(['paid', 'paid']);
  expect(textOf(await b.call('confirm_payment', { payment_id: paid.payment_id }))).toContain('paid');

  const canceled = paymentOf(await a.call('report', { topic: 'canceled' }))!;
  expect((await b.router.cancel(canceled.payment_id)).status).toBe('expired');
  expect((await a.router.refund(paid.payment_id)).status).toBe('refunded');

  const sum = async (name: string) => total(await a.m.points(name)) + total(await b.m.points(name));
  expect(await sum('payrouter.payments.paid')).toBe(1);
  expect(await sum('payrouter.payment.time_to_paid')).toBe(1);
  expect(await sum('payrouter.payments.expired')).toBe(1);
  expect(await sum('payrouter.payments.refunded')).toBe(1);
  expect(await sum('payrouter.payments.created')).toBe(2);
}

type Call = (name: string, args: Record<string, unknown>) => Promise<CallToolResult>;
type Meters = ReturnType<typeof meters>;
interface RouterLike {
  checkPayment(id: string): Promise<unknown>;
  cancel(id: string): Promise<{ status: string }>;
  refund(id: string): Promise<{ status: string }>;
}

describe('how payments ended, counted once across instances', () => {
  it('two routers on one memoryStore', async () => {
    const world = await startWorld();
    const store = memoryStore();
    const closers: Array<() => Promise<void>> = [];
    const instance = async () => {
      const m = meters();
      const { stripe, walleot } = world.sandbox.providers();
      const { server, router } = world.makeServer({
        store,
        flow: 'two_step',
        providers: [stripe, walleot],
        routing: { policy: 'first' },
        telemetry: { meterProvider: m.meterProvider },
      });
      const { client, close } = await connectClient(server, { elicitation: 'none', authInfo: auth('pat') });
      closers.push(close, m.close);
      const call: Call = (name, args) =>
        client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
      return { call, router, m };
    };
    try {
      const pay = async (id: string) => {
        const intent = await store.get(id);
        await payAt(intent!.attempts.at(-1)!.url);
      };
      await endsCountedOnce(await instance(), await instance(), pay);
    } finally {
      await Promise.all(closers.map((c) => c()));
      await world.close();
    }
  });

  describe('on redis-server', () => {
    let redis: RedisServer;
    let sandbox: Sandbox;
    const instances: Instance[] = [];
    const users: UserClient[] = [];
    const meterSets: Meters[] = [];
    beforeAll(async () => {
      redis = await startRedisServer();
      sandbox = await startSandbox();
    });
    afterAll(async () => {
      await Promise.all(users.map((u) => u.close()));
      for (const i of instances) await i.close();
      await Promise.all(meterSets.map((m) => m.close()));
      await sandbox?.close();
      await redis?.stop();
    });

    it('two instances, one Redis', async () => {
      const start = async (name: string) => {
        const m = meters();
        meterSets.push(m);
        const instance = await startInstance({
          name,
          redisUrl: redis.url,
          sandbox: endpointsOf(sandbox),
          tools: (server) =>
            registerReportTool(server, 'report', async (topic) => `report on ${topic} (paid)`),
          router: { flow: 'two_step', telemetry: { meterProvider: m.meterProvider } },
        });
        instances.push(instance);
        const user = await connectUser(instance.mcpUrl, 'quinn');
        users.push(user);
        return { call: user.call, router: instance.router, m };
      };
      const a = await start('A');
      const pay = async (id: string) => {
        const intent = await instances[0]!.store.get(id);
        sandbox.stripe.pay(intent!.attempts.at(-1)!.paymentId);
      };
      await endsCountedOnce(a, await start('B'), pay);
    });
  });
});
