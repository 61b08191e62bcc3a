// Issue 15: the telemetry example, run with an in-memory span exporter and a metric reader: the
// span tree of each flow, continuing the client's trace from _meta.traceparent, and the metrics.
// A call whose only step is the run (its payment already confirmed, a free call, x402's paid
// retry, confirm_payment) is one span carrying the run's attributes; a call with other steps has
// them, and the run, as children.
import { AsyncLocalStorage } from 'node:async_hooks';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type Context, type ContextManager, context, ROOT_CONTEXT, SpanStatusCode } from '@opentelemetry/api';
import { AggregationTemporality, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { x402Client } from '@x402/core/client';
import type { PaymentRequired } from '@x402/core/types';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createServer } from '../examples/telemetry.js';
import { memoryStore, PayRouter, type PayRouterOptions } from '../src/index.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { connectClient, payAt, paymentOf, textOf } from './support/paid-server.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const traceparent = `00-${TRACE_ID}-${CLIENT_SPAN}-01`;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setUp(elicitation: 'none' | 'url') {
  const exporter = new InMemorySpanExporter();
  const metricReader = new TestReader();
  const example = await createServer({ exporter, metricReader });
  const { client, close } = await connectClient(example.server, {
    elicitation,
    onElicit: async (request) => {
      if ('url' in request && typeof request.url === 'string') await payAt(request.url);
      return { action: 'accept' };
    },
  });
  cleanups.push(async () => {
    await close();
    await example.close();
  });
  const call = (
    name: string,
    args: Record<string, unknown>,
    meta: Record<string, unknown> = { traceparent },
  ) => client.callTool({ name, arguments: args, _meta: meta }) as Promise<CallToolResult>;
  return { exporter, metricReader, call };
}

/**
 * What an application's SDK setup registers (NodeSDK's AsyncLocalStorage context manager), written
 * out on the public ContextManager interface: the active context follows async work.
 */
class StorageContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const run = (self: unknown, args: unknown[]) => this.with(ctx, () => target.apply(self, args));
    return function (this: unknown, ...args: unknown[]) {
      return run(this, args);
    } as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#storage.disable();
    return this;
  }
}

/** The finished spans as a tree of names under each payrouter.paid_call, from the exporter. */
function treesOf(spans: ReadableSpan[]) {
  const calls = spans.filter((s) => s.name === 'payrouter.paid_call');
  return calls.map((root) => ({
    root,
    children: spans
      .filter((s) => s.parentSpanContext?.spanId === root.spanContext().spanId)
      .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1])
      .map((s) => s.name),
  }));
}

async function metricsOf(reader: MetricReader): Promise<Map<string, number>> {
  const { resourceMetrics } = await reader.collect();
  const out = new Map<string, number>();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      let total = 0;
      for (const point of metric.dataPoints) {
        const value = point.value as number | { count: number };
        total += typeof value === 'number' ? value : value.count;
      }
      out.set(metric.descriptor.name, total);
    }
  }
  return out;
}

describe('OpenTelemetry', () => {
  it('two-step flow: a free call, then a paid one confirmed later; each call a span of the client trace', async () => {
    const { exporter, metricReader, call } = await setUp('none');
    expect(textOf(await call('summarize', { text: 'secret words one' }))).toBe('Summary: secret words one');
    const required = await call('summarize', { text: 'secret words two' });
    const payment = paymentOf(required)!;
    await payAt(payment.payment_url!);
    expect(textOf(await call('confirm_payment', { payment_id: payment.payment_id }))).toBe(
      'Summary: secret words two',
    );

    const spans = exporter.getFinishedSpans();
    for (const span of spans) expect(span.spanContext().traceId).toBe(TRACE_ID);
    const trees = treesOf(spans);
    expect(
      trees.map((t) => [
        t.root.attributes['payrouter.tool'],
        t.root.attributes['payrouter.outcome'],
        t.children,
      ]),
    ).toEqual([
      ['summarize', 'ran', []],
      ['summarize', 'payment_required', ['payrouter.route', 'payrouter.create']],
      ['confirm_payment', 'ran', []],
    ]);
    for (const { root } of trees) expect(root.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
    expect(trees[0]!.root.attributes).toMatchObject({
      'payrouter.provider': 'free',
      'payrouter.amount': 0,
      'payrouter.currency': 'USD',
      'payrouter.run.outcome': 'ok',
    });
    expect(trees[2]!.root.attributes).toMatchObject({
      'payrouter.provider': 'walleot',
      'payrouter.amount': 25,
      'payrouter.status': 'paid',
      'payrouter.run.outcome': 'ok',
    });
    for (const i of [0, 2])
      expect(trees[i]!.root.attributes['payrouter.run.duration_ms']).toBeGreaterThanOrEqual(0);
    // The call answered "payment required" ran nothing.
    expect(trees[1]!.root.attributes['payrouter.run.outcome']).toBeUndefined();
    expect(spans.some((s) => s.name === 'payrouter.run')).toBe(false);
    const create = spans.find((s) => s.name === 'payrouter.create')!;
    expect(create.attributes).toMatchObject({
      'payrouter.provider': 'walleot',
      'payrouter.amount': 25,
      'payrouter.currency': 'USD',
    });
    // Never the arguments, never a key.
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toMatch(/secret words|sk_|whsec_/);

    const metrics = await metricsOf(metricReader);
    expect(metrics.get('payrouter.calls.free')).toBe(1);
    expect(metrics.get('payrouter.payments.created')).toBe(1);
    expect(metrics.get('payrouter.payments.paid')).toBe(1);
    expect(metrics.get('payrouter.payment.time_to_paid')).toBe(1);
    // Every provider request: the create, and the status read confirm_payment made.
    expect(metrics.get('payrouter.provider.duration')).toBe(2);
  });

  it('URL elicitation flow: route, create, await and run under one call span; a limit refusal is a span and a metric', async () => {
    const { exporter, metricReader, call } = await setUp('url');
    await call('summarize', { text: 'free' });
    exporter.reset();
    for (const text of ['a', 'b', 'c', 'd'])
      expect(textOf(await call('summarize', { text }))).toBe(`Summary: ${text}`);
    const limited = await call('summarize', { text: 'e' });
    expect(limited._meta?.['payrouter/limit']).toMatchObject({ kind: 'spend', used: '1.00' });

    const trees = treesOf(exporter.getFinishedSpans());
    expect(trees).toHaveLength(5);
    for (const tree of trees.slice(0, 4)) {
      expect(tree.children).toEqual([
        'payrouter.route',
        'payrouter.create',
        'payrouter.await',
        'payrouter.run',
      ]);
      expect(tree.root.spanContext().traceId).toBe(TRACE_ID);
    }
    // Routed, then refused at open: no provider payment was created.
    expect(trees[4]!.children).toEqual(['payrouter.route']);
    expect(trees[4]!.root.attributes).toMatchObject({
      'payrouter.outcome': 'limited',
      'payrouter.limit.kind': 'spend',
    });
    const metrics = await metricsOf(metricReader);
    expect(metrics.get('payrouter.limit.refusals')).toBe(1);
    expect(metrics.get('payrouter.payments.paid')).toBe(4);
  });

  it('without a traceparent the call span starts a trace of its own; a malformed one is ignored', async () => {
    const { exporter, call } = await setUp('none');
    await call('summarize', { text: 'x' }, {});
    await call('summarize', { text: 'y' }, { traceparent: '00-zz-00' });
    const roots = treesOf(exporter.getFinishedSpans()).map((t) => t.root);
    expect(roots).toHaveLength(2);
    for (const root of roots) {
      expect(root.parentSpanContext).toBeUndefined();
      expect(root.spanContext().traceId).not.toBe(TRACE_ID);
    }
  });
});

describe('OpenTelemetry: the span tree of the other flows', () => {
  let sandbox: Sandbox;
  beforeAll(async () => {
    sandbox = await startSandbox();
  });
  afterAll(async () => {
    await sandbox.close();
  });

  /** With `toolSpans`, each tool opens a span of its own (`app.<tool>`) in the active context. */
  async function tracedServer(providers: PayRouterOptions['providers'], toolSpans = false) {
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const app = tracerProvider.getTracer('app');
    const work = <T>(tool: string, fn: () => T): T =>
      toolSpans
        ? app.startActiveSpan(`app.${tool}`, (span) => {
            try {
              return fn();
            } finally {
              span.end();
            }
          })
        : fn();
    const server = new McpServer({ name: 'traced', version: '1.0.0' });
    const router = new PayRouter(server, {
      store: memoryStore(),
      providers,
      logger: quiet,
      telemetry: { tracerProvider },
      timeouts: { choiceMs: 5000, paymentWaitMs: 3000 },
      confirmation: { pendingTtlMs: 50, poll: { initialMs: 20, maxMs: 100 } },
    });
    server.registerTool(
      'report',
      {
        description: 'A report',
        inputSchema: { topic: z.string() },
        price: { amount: '25.00', currency: 'USD' },
      },
      async ({ topic }) =>
        work('report', () => ({ content: [{ type: 'text', text: `Report on ${topic}` }] })),
    );
    server.registerTool(
      'note',
      {
        description: 'A note',
        inputSchema: { topic: z.string() },
        price: { amount: '0.25', currency: 'USD' },
      },
      async ({ topic }) => work('note', () => ({ content: [{ type: 'text', text: `Note on ${topic}` }] })),
    );
    server.registerTool(
      'flaky',
      {
        description: 'Fails as told',
        inputSchema: { how: z.enum(['throw', 'error']) },
        price: { amount: '0.50', currency: 'USD' },
      },
      async ({ how }): Promise<CallToolResult> => {
        if (how === 'throw') throw new TypeError('flaky broke');
        return { content: [{ type: 'text', text: 'no luck' }], isError: true };
      },
    );
    cleanups.push(async () => {
      await router.close();
      await tracerProvider.shutdown();
    });
    return { server, exporter };
  }

  it('method choice by form, then the link by URL: route, choose, create, await, run', async () => {
    const { walleot, stripe } = sandbox.providers({ logger: quiet });
    const { server, exporter } = await tracedServer([walleot, stripe]);
    const { client, close } = await connectClient(server, {
      elicitation: 'form+url',
      onElicit: async (request) => {
        if ('url' in request && typeof request.url === 'string') {
          await payAt(request.url);
          return { action: 'accept' };
        }
        return { action: 'accept', content: { method: 'stripe', remember: false } };
      },
    });
    cleanups.push(close);
    const result = (await client.callTool({
      name: 'report',
      arguments: { topic: 'owls' },
      _meta: { traceparent },
    })) as CallToolResult;
    expect(textOf(result)).toBe('Report on owls');

    const spans = exporter.getFinishedSpans();
    const [tree] = treesOf(spans);
    expect(tree!.children).toEqual([
      'payrouter.route',
      'payrouter.choose',
      'payrouter.create',
      'payrouter.await',
      'payrouter.run',
    ]);
    for (const span of spans) expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(tree!.root.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
    expect(spans.find((s) => s.name === 'payrouter.choose')!.attributes['payrouter.choice']).toBe('stripe');
    expect(tree!.root.attributes).toMatchObject({
      'payrouter.provider': 'stripe',
      'payrouter.outcome': 'ran',
    });
  });

  it('an agent paying with x402: the requirement, then the paid call, each in the client trace', async () => {
    const { walleot } = sandbox.providers({ logger: quiet });
    const { server, exporter } = await tracedServer([walleot, sandbox.x402Provider({ logger: quiet })]);
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    cleanups.push(close);
    const agent = new x402Client().register(
      'eip155:84532',
      new ExactEvmScheme(sandbox.x402.newWallet().account),
    );
    const call = (meta: Record<string, unknown>) =>
      client.callTool({
        name: 'note',
        arguments: { topic: 'bats' },
        _meta: { traceparent, ...meta },
      }) as Promise<CallToolResult>;
    const first = await call({});
    const required = first.structuredContent as unknown as PaymentRequired;
    const paid = await call({ 'x402/payment': await agent.createPaymentPayload(required) });
    expect(textOf(paid)).toBe('Note on bats');

    const spans = exporter.getFinishedSpans();
    for (const span of spans) expect(span.spanContext().traceId).toBe(TRACE_ID);
    const trees = treesOf(spans);
    expect(trees.map((t) => [t.root.attributes['payrouter.outcome'], t.children])).toEqual([
      ['payment_required', ['payrouter.route', 'payrouter.create']],
      ['ran', []],
    ]);
    expect(trees[1]!.root.attributes).toMatchObject({
      'payrouter.provider': 'x402',
      'payrouter.status': 'paid',
      'payrouter.run.outcome': 'ok',
    });
  });

  it('a confirmed call whose tool fails: the call span says how the run ended', async () => {
    const { walleot } = sandbox.providers({ logger: quiet });
    const { server, exporter } = await tracedServer([walleot]);
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    cleanups.push(close);
    const call = (how: string) =>
      client.callTool({
        name: 'flaky',
        arguments: { how },
        _meta: { traceparent },
      }) as Promise<CallToolResult>;
    for (const how of ['throw', 'error']) await payAt(paymentOf(await call(how))!.payment_url!);
    exporter.reset();
    for (const how of ['throw', 'error']) expect((await call(how)).isError).toBe(true);

    const trees = treesOf(exporter.getFinishedSpans());
    expect(
      trees.map((t) => [
        t.root.attributes['payrouter.outcome'],
        t.root.attributes['payrouter.run.outcome'],
        t.root.status,
        t.children,
      ]),
    ).toEqual([
      ['tool_failed', 'error', { code: SpanStatusCode.ERROR, message: 'TypeError' }, []],
      ['tool_failed', 'tool_error', { code: SpanStatusCode.UNSET }, []],
    ]);
    for (const { root } of trees)
      expect(root.attributes['payrouter.run.duration_ms']).toBeGreaterThanOrEqual(0);
    // The error's message is the tool's, never put on a span.
    expect(JSON.stringify(trees.map((t) => [t.root.attributes, t.root.events]))).not.toMatch(/flaky broke/);
  });

  describe('with a context manager registered by the application', () => {
    beforeAll(() => {
      expect(context.setGlobalContextManager(new StorageContextManager())).toBe(true);
    });
    afterAll(() => {
      context.disable();
    });

    it("a call whose payment is already confirmed is one span with the run on it; the tool's own span is its child", async () => {
      const { walleot } = sandbox.providers({ logger: quiet });
      const { server, exporter } = await tracedServer([walleot], true);
      const { client, close } = await connectClient(server, { elicitation: 'none' });
      cleanups.push(close);
      const call = () =>
        client.callTool({
          name: 'report',
          arguments: { topic: 'moths' },
          _meta: { traceparent },
        }) as Promise<CallToolResult>;
      const payment = paymentOf(await call())!;
      await payAt(payment.payment_url!);
      exporter.reset();
      expect(textOf(await call())).toBe('Report on moths');

      const spans = exporter.getFinishedSpans();
      expect(spans.map((s) => s.name).sort()).toEqual(['app.report', 'payrouter.paid_call']);
      const root = spans.find((s) => s.name === 'payrouter.paid_call')!;
      const tool = spans.find((s) => s.name === 'app.report')!;
      expect(root.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
      expect(tool.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
      for (const span of spans) expect(span.spanContext().traceId).toBe(TRACE_ID);
      expect(root.attributes).toMatchObject({
        'payrouter.tool': 'report',
        'payrouter.outcome': 'ran',
        'payrouter.provider': 'walleot',
        'payrouter.amount': 2500,
        'payrouter.currency': 'USD',
        'payrouter.status': 'paid',
        'payrouter.run.outcome': 'ok',
      });
      expect(root.attributes['payrouter.run.duration_ms']).toBeGreaterThanOrEqual(0);
      expect(root.status.code).toBe(SpanStatusCode.UNSET);
    });

    it("a call with other steps keeps its run child; the tool's own span is the run's child", async () => {
      const { walleot } = sandbox.providers({ logger: quiet });
      const { server, exporter } = await tracedServer([walleot], true);
      const { client, close } = await connectClient(server, {
        elicitation: 'url',
        onElicit: async (request) => {
          if ('url' in request && typeof request.url === 'string') await payAt(request.url);
          return { action: 'accept' };
        },
      });
      cleanups.push(close);
      const result = (await client.callTool({
        name: 'report',
        arguments: { topic: 'newts' },
        _meta: { traceparent },
      })) as CallToolResult;
      expect(textOf(result)).toBe('Report on newts');

      const spans = exporter.getFinishedSpans();
      const [tree, ...others] = treesOf(spans);
      expect(others).toEqual([]);
      expect(tree!.children).toEqual([
        'payrouter.route',
        'payrouter.create',
        'payrouter.await',
        'payrouter.run',
      ]);
      const run = spans.find((s) => s.name === 'payrouter.run')!;
      const tool = spans.find((s) => s.name === 'app.report')!;
      expect(tool.parentSpanContext?.spanId).toBe(run.spanContext().spanId);
      expect(run.attributes['payrouter.outcome']).toBe('ok');
      expect(tree!.root.attributes['payrouter.run.outcome']).toBeUndefined();
      expect(spans).toHaveLength(6);
    });
  });
});
