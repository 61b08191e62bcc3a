// OpenTelemetry on the v2 path: each round of a paid call over the v2 Client (protocol 2026-07-28,
// stateless Streamable HTTP into createMcpHandler) is a payrouter.paid_call span continuing the
// client's trace from _meta.traceparent, with the same child spans as on the 1.x path.
import type { CallToolResult } from '@modelcontextprotocol/client';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { memoryStore, PAYMENT_META_KEY, type PaymentInfo, PayRouter, silentLogger } from '../src/index.js';
import { installV2 } from '../src/mcp-v2.js';
import { startSandbox } from '../src/sandbox.js';
import { payAt, textOf } from './support/paid-server.js';
import { connectV2, inProcessFetch, type V2UserOptions } from './support/v2-world.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const traceparent = `00-${TRACE_ID}-${CLIENT_SPAN}-01`;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function world(user: V2UserOptions) {
  const sandbox = await startSandbox();
  const providers = sandbox.providers();
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const router = new PayRouter({
    providers: [providers.walleot, providers.stripe],
    store: memoryStore(),
    logger: silentLogger,
    requestStateKey: 'telemetry-request-state-key-0123456789abcdef',
    telemetry: { tracerProvider },
    timeouts: { choiceMs: 5000, paymentWaitMs: 3000 },
    confirmation: { pendingTtlMs: 50, poll: { initialMs: 20, maxMs: 100 } },
  });
  const handler = createMcpHandler(() => {
    const server = installV2(router, new McpServer({ name: 'v2-traced', version: '1.0.0' }));
    server.registerTool(
      'summarize',
      {
        description: 'Summarize',
        inputSchema: z.object({ text: z.string() }),
        price: { amount: '2.00', currency: 'USD' },
      },
      async ({ text }) => ({ content: [{ type: 'text', text: `Summary: ${text}` }] }),
    );
    return server;
  });
  const client = await connectV2(inProcessFetch(handler), user);
  cleanups.push(async () => {
    await client.close();
    await handler.close();
    await router.close();
    await tracerProvider.shutdown();
    await sandbox.close();
  });
  const call = (
    name: string,
    args: Record<string, unknown>,
    meta: Record<string, unknown> = { traceparent },
  ) => client.client.callTool({ name, arguments: args, _meta: meta }) as Promise<CallToolResult>;
  return { exporter, call };
}

/** The finished spans as a tree of names under each payrouter.paid_call, in the order they started. */
function treesOf(spans: ReadableSpan[]) {
  const byStart = (a: ReadableSpan, b: ReadableSpan) =>
    a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1];
  return spans
    .filter((s) => s.name === 'payrouter.paid_call')
    .sort(byStart)
    .map((root) => ({
      root,
      children: spans
        .filter((s) => s.parentSpanContext?.spanId === root.spanContext().spanId)
        .sort(byStart)
        .map((s) => s.name),
    }));
}

const paymentOf = (r: CallToolResult) => r._meta?.[PAYMENT_META_KEY] as PaymentInfo | undefined;

describe('OpenTelemetry on payrouter/mcp-v2', () => {
  it('two-step flow: the paid call and confirm_payment are spans of the client trace, as on 1.x', async () => {
    const { exporter, call } = await world({ elicitation: 'none' });
    const required = await call('summarize', { text: 'secret words' });
    const payment = paymentOf(required)!;
    await payAt(payment.payment_url!);
    expect(textOf(await call('confirm_payment', { payment_id: payment.payment_id }))).toBe(
      'Summary: secret words',
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
      ['summarize', 'payment_required', ['payrouter.route', 'payrouter.create']],
      // Its only step is the run: one span, with the run's attributes on it.
      ['confirm_payment', 'ran', []],
    ]);
    for (const { root } of trees) expect(root.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
    expect(trees[1]!.root.attributes).toMatchObject({
      'payrouter.amount': 200,
      'payrouter.currency': 'USD',
      'payrouter.status': 'paid',
      'payrouter.run.outcome': 'ok',
    });
    expect(trees[1]!.root.attributes['payrouter.run.duration_ms']).toBeGreaterThanOrEqual(0);
    expect(spans.some((s) => s.name === 'payrouter.run')).toBe(false);
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toMatch(/secret words/);
  });

  it('input-required rounds: each round is a call span of the client trace; together route, choose, create, run', async () => {
    const { exporter, call } = await world({
      elicitation: 'form+url',
      onForm: () => ({ action: 'accept', content: { method: 'walleot' } }),
    });
    expect(textOf(await call('summarize', { text: 'rounds' }))).toBe('Summary: rounds');

    const trees = treesOf(exporter.getFinishedSpans());
    expect(trees.map((t) => [t.root.attributes['payrouter.outcome'], t.children])).toEqual([
      ['input_required', ['payrouter.route', 'payrouter.choose']],
      ['input_required', ['payrouter.choose', 'payrouter.create']],
      // Paid before the link's answer came back: the retry finds it paid and runs, with no wait;
      // the run is its only step, so the round is one span with the run on it.
      ['ran', []],
    ]);
    for (const { root } of trees) {
      expect(root.spanContext().traceId).toBe(TRACE_ID);
      expect(root.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
      expect(root.attributes['payrouter.tool']).toBe('summarize');
    }
    expect(trees[2]!.root.attributes).toMatchObject({
      'payrouter.provider': 'walleot',
      'payrouter.status': 'paid',
      'payrouter.run.outcome': 'ok',
    });
  });

  it('without a traceparent the call span starts a trace of its own', async () => {
    const { exporter, call } = await world({ elicitation: 'none' });
    await call('summarize', { text: 'x' }, {});
    const roots = treesOf(exporter.getFinishedSpans()).map((t) => t.root);
    expect(roots).toHaveLength(1);
    expect(roots[0]!.parentSpanContext).toBeUndefined();
    expect(roots[0]!.spanContext().traceId).not.toBe(TRACE_ID);
  });
});
