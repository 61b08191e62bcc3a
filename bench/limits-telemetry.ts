// The cost of limits and tracing: a confirmed paid call (and a whole two-step paid call, where
// the limits' reservations happen) with limits and tracing off, tracing through the API with no
// SDK (the default), limits on, tracing recorded by an SDK (with and without a client trace in
// `_meta.traceparent`), and limits plus tracing, all against a free call on its own server; and
// the SDK's own cost of one span recorded inside a free call (the floor under any tracing).
// Nothing is registered globally (no tracer provider, no context manager): every configuration
// runs with the same global state, so none taxes or helps another.
// Run: node --import tsx bench/limits-telemetry.ts
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ROOT_CONTEXT, SpanKind, type Tracer } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';
import type { Outcome } from '../src/engine/pipeline/outcome.js';
import type { RouterCore } from '../src/engine/runtime.js';
import { describeRun } from '../src/engine/telemetry/steps.js';
import { Telemetry } from '../src/engine/telemetry/telemetry.js';
import type { PayRouterOptions } from '../src/index.js';
import { tracedCall } from '../src/mcp/traced-call.js';
import { paymentOf } from '../test/support/paid-server.js';
import { ZeroLatencyProvider } from '../test/support/zero-latency-provider.js';
import { callTool } from './support/mcp.js';
import { type BenchSection, runIfMain, table } from './support/section.js';
import { ratio, type Summary, summarize, us } from './support/stats.js';
import { benchClient, benchServer, toolResult } from './support/world.js';

const CALLS = Number(process.env['BENCH_LIMITS_CALLS'] ?? 2000);
const ROUNDS = 5;
const WARMUP = 300;
/** Keeps the whole calls' arguments apart from the confirmed calls'. */
const WHOLE_OFFSET = 10_000_000;

/** Spans go nowhere: the SDK's own cost of recording and batching them, without any exporter's. */
const discard = {
  export(_spans: ReadableSpan[], done: (result: { code: 0 }) => void) {
    done({ code: 0 });
  },
  async shutdown() {},
};

const LIMITS: PayRouterOptions['limits'] = {
  spend: [
    { max: '1000000.00', currency: 'USD', per: 'day' },
    { max: '1000000.00', currency: 'USD', per: { rollingMs: 3_600_000 }, scope: 'global' },
  ],
  calls: [{ max: 1_000_000_000, per: 'month' }],
};

interface Config {
  name: string;
  options: Partial<PayRouterOptions>;
  /** The request's `_meta` (a client's trace context). */
  meta?: Record<string, unknown>;
}

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/**
 * A new order of 0..n-1 on every call (seeded: the same sequence each run). A call's cost depends
 * on what ran just before it (what it left in the CPU's caches) by more than the effects measured
 * here: in a fixed cycle each configuration would always follow the same other one.
 */
function shuffler(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (n: number): number[] => {
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return order;
  };
}

async function timeCall(
  client: Client,
  name: string,
  args: Record<string, unknown>,
  meta?: Record<string, unknown>,
  /** Gets the call's CPU time (ms, user + system) of this process: load elsewhere barely moves it. */
  cpu?: number[],
): Promise<number> {
  const cpuStarted = process.cpuUsage();
  const started = performance.now();
  // One request shape for every configuration, `_meta` or not (the same options as callTool).
  const result = (await client.callTool(
    meta === undefined ? { name, arguments: args } : { name, arguments: args, _meta: meta },
    undefined,
    { timeout: 120_000 },
  )) as CallToolResult;
  const elapsed = performance.now() - started;
  if (cpu) {
    const used = process.cpuUsage(cpuStarted);
    cpu.push((used.user + used.system) / 1000);
  }
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content)}`);
  return elapsed;
}

const ISOLATED_CALLS = 50_000;

/**
 * The SDK's own work for a confirmed paid call's tracing, done directly: the call span with the
 * attributes payrouter gives it (the run's among them), started and ended.
 */
function sdkSpan(tracer: Tracer): void {
  const span = tracer.startSpan(
    'payrouter.paid_call',
    { kind: SpanKind.SERVER, attributes: { 'payrouter.tool': 'work' } },
    ROOT_CONTEXT,
  );
  span.setAttribute('payrouter.run.outcome', 'ok');
  span.setAttribute('payrouter.run.duration_ms', 0.01);
  span.setAttribute('payrouter.outcome', 'ran');
  span.setAttribute('payrouter.amount', 5);
  span.setAttribute('payrouter.currency', 'USD');
  span.setAttribute('payrouter.provider', 'zero');
  span.setAttribute('payrouter.status', 'paid');
  span.end();
}

/**
 * The tracing code of one confirmed paid call alone, no MCP and no store: the call span around a
 * run step whose tool returns at once, by CPU time of this process per call. The floor is the
 * SDK's own cost of the same span with the same attributes, started and ended directly. A tight
 * loop keeps the SDK's code and data in the CPU's caches: inside a real call the same span costs
 * two to three times this (the in-call floor above).
 */
async function isolatedTracing(tracerProvider: BasicTracerProvider) {
  const tracer = tracerProvider.getTracer('floor');
  const intent = {
    binding: { amount: 5, currency: 'USD', tool: 'work' },
    attempts: [{ providerId: 'zero' }],
  };
  const outcome = { kind: 'ran', intent: { ...intent, status: 'paid' } } as unknown as Outcome;
  const result = { content: [] };
  const interaction = {
    chooseMethod: async () => ({ kind: 'deferred' as const }),
    deliver: async () => 'deferred' as const,
  };
  const through = (telemetry: Telemetry) => {
    const core = { telemetry } as unknown as RouterCore;
    return () =>
      tracedCall(core, 'work', { extra: { requestId: 1 }, interaction } as never, async (ctx) => {
        const run = () => Promise.resolve(result);
        const traced = telemetry.callOf(ctx.extra);
        if (traced) await traced.step('payrouter.run', run, describeRun);
        else await run();
        return outcome;
      });
  };
  const floor = async () => {
    await Promise.resolve(result);
    sdkSpan(tracer);
  };
  const kinds: Array<[string, () => Promise<unknown>]> = [
    ['telemetry off', through(new Telemetry({ enabled: false }))],
    ['through the API, no SDK', through(new Telemetry({}))],
    ['recorded by an SDK', through(new Telemetry({ tracerProvider }))],
    ["the SDK's floor: the same span, directly", floor],
  ];
  const cpu = new Map<string, number[]>();
  for (let round = -1; round < ROUNDS; round++)
    for (const [name, fn] of kinds) {
      const started = process.cpuUsage();
      for (let i = 0; i < ISOLATED_CALLS / ROUNDS; i++) await fn();
      const used = process.cpuUsage(started);
      // Round -1 is the warm-up.
      if (round >= 0)
        cpu.set(name, [...(cpu.get(name) ?? []), (used.user + used.system) / (ISOLATED_CALLS / ROUNDS)]);
    }
  return kinds.map(([name]) => ({
    name,
    us: summarize((cpu.get(name) ?? []).map((v) => v / 1000)).median * 1000,
  }));
}

export async function limitsTelemetry(): Promise<BenchSection> {
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(discard)] });
  const configs: Config[] = [
    { name: 'limits off, telemetry off', options: { telemetry: { enabled: false } } },
    { name: 'limits off, tracing through the API, no SDK (default)', options: {} },
    {
      name: 'limits on (2 spend caps, 1 call quota)',
      options: { limits: LIMITS, telemetry: { enabled: false } },
    },
    {
      name: 'limits off, tracing recorded by an SDK',
      options: { telemetry: { tracerProvider } },
    },
    {
      name: 'limits off, tracing recorded, client sends traceparent',
      options: { telemetry: { tracerProvider } },
      meta: { traceparent: TRACEPARENT },
    },
    {
      name: 'limits on, tracing recorded by an SDK',
      options: { limits: LIMITS, telemetry: { tracerProvider } },
    },
  ];
  const floorTracer = tracerProvider.getTracer('floor');
  const worlds = await Promise.all(
    configs.map(async (c, i) => {
      const provider = new ZeroLatencyProvider({ mode: 'paid_on_first_read' });
      const world = benchServer({ providers: [provider], flow: 'two_step', ...c.options });
      // Two free tools alike but for one thing, the confirmed call's span recorded by the SDK in
      // the handler: the difference is the SDK's own cost of that span inside a call.
      if (i === 0)
        for (const [tool, span] of [
          ['work_plain', false],
          ['work_span', true],
        ] as const)
          world.server.registerTool(
            tool,
            { description: 'Work (free)', inputSchema: { n: z.number() } },
            async ({ n }) => {
              if (span) sdkSpan(floorTracer);
              return toolResult(n);
            },
          );
      const client = await benchClient(world.server);
      return {
        ...c,
        world,
        client,
        confirmed: [] as number[],
        confirmedCpu: [] as number[],
        whole: [] as number[],
      };
    }),
  );
  const free: number[] = [];
  const freeCpu: number[] = [];
  const plain: number[] = [];
  const spanned: number[] = [];
  /** Open and confirm (not run) payments for n in [from, from+count): the state a payer who paid is in. */
  const prepare = async (w: (typeof worlds)[number], from: number, count: number) => {
    for (let n = from; n < from + count; n++) {
      const pending = paymentOf(await callTool(w.client.client, 'work', { n }));
      if (pending?.status !== 'pending') throw new Error(`expected a pending payment in ${w.name}`);
      await w.world.router.checkPayment(pending.payment_id);
    }
  };
  /** Whole two-step paid calls (call, then confirm_payment: paid on first read, runs). */
  const whole = async (w: (typeof worlds)[number], from: number, count: number, keep: boolean) => {
    for (let n = from; n < from + count; n++) {
      const started = performance.now();
      const pending = paymentOf(await callTool(w.client.client, 'work', { n: WHOLE_OFFSET + n }));
      const done = await callTool(w.client.client, 'confirm_payment', { payment_id: pending!.payment_id });
      if (done.isError) throw new Error(`confirm_payment failed in ${w.name}`);
      if (keep) w.whole.push(performance.now() - started);
    }
  };
  // Warm-up: every path of every router.
  for (const w of worlds) {
    await prepare(w, -WARMUP, WARMUP);
    for (let n = -WARMUP; n < 0; n++) await timeCall(w.client.client, 'work', { n }, w.meta);
    await whole(w, -WARMUP, WARMUP, false);
  }
  for (let i = 0; i < WARMUP; i++)
    for (const tool of ['work_free', 'work_plain', 'work_span'])
      await timeCall(worlds[0]!.client.client, tool, { n: -1 - i });

  const order = shuffler(15);

  const perRound = Math.ceil(CALLS / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    const from = round * perRound;
    for (const w of worlds) await prepare(w, from, perRound);
    // Call by call, the configurations taking turns in a new order each time, with the free calls
    // among them: on a shared machine every configuration sees the same load, which comes and goes
    // faster than a block of calls takes, and follows every other one as often.
    for (let n = from; n < from + perRound; n++)
      for (const k of order(worlds.length)) await whole(worlds[k]!, n, 1, true);
    for (let n = from; n < from + perRound; n++) {
      for (const k of order(worlds.length + 3)) {
        const free0 = worlds[0]!.client.client;
        if (k === worlds.length) free.push(await timeCall(free0, 'work_free', { n }, undefined, freeCpu));
        else if (k === worlds.length + 1) plain.push(await timeCall(free0, 'work_plain', { n }));
        else if (k === worlds.length + 2) spanned.push(await timeCall(free0, 'work_span', { n }));
        else {
          // A confirmed paid call: paid, not yet run (it runs now).
          const w = worlds[k]!;
          w.confirmed.push(await timeCall(w.client.client, 'work', { n }, w.meta, w.confirmedCpu));
        }
      }
    }
  }
  for (const w of worlds) {
    await w.client.close();
    await w.world.router.close();
  }
  const isolated = await isolatedTracing(tracerProvider);
  await tracerProvider.shutdown();

  const freeS = summarize(free);
  const freeCpuS = summarize(freeCpu);
  const inCallSpan = summarize(spanned).median - summarize(plain).median;
  const stats = worlds.map((w) => ({
    name: w.name,
    confirmed: summarize(w.confirmed),
    confirmedCpu: summarize(w.confirmedCpu),
    whole: summarize(w.whole),
  }));
  const base = stats[0]!;
  const apiOnly = stats[1]!;
  const limitsOnly = stats[2]!;
  const tracing = stats[3]!;
  const traced = stats[4]!;
  const both = stats[5]!;
  const added = (s: Summary, b: Summary) => s.median - b.median;
  const share = (ms: number) => `${(ms / freeS.median).toFixed(3)}×`;
  const addedCpu = (s: (typeof stats)[number]) => s.confirmedCpu.median - base.confirmedCpu.median;
  const cpuShare = (s: (typeof stats)[number]) =>
    `${(addedCpu(s) * 1000).toFixed(1)} µs = ${(addedCpu(s) / freeCpuS.median).toFixed(3)}×`;
  const markdown = [
    `Sequential calls over the SDK's InMemoryTransport, memoryStore, a zero-latency provider, ${CALLS} calls per`,
    `kind and configuration in ${ROUNDS} rounds after ${WARMUP} warm-up calls, the configurations taking turns call by call in a new (seeded) order each time. "Confirmed": a paid`,
    'call whose payment is already confirmed (paid, not yet run); "whole": call + confirm_payment, where the',
    "limits' reservations are made. The ledger is on in every configuration (its default).",
    '',
    table(
      ['configuration', 'confirmed median', 'confirmed p99', 'confirmed CPU median', 'whole two-step median'],
      stats.map((s) => [
        s.name,
        us(s.confirmed.median),
        us(s.confirmed.p99),
        us(s.confirmedCpu.median),
        us(s.whole.median),
      ]),
    ),
    '',
    `- Free call: ${us(freeS.median)} median.`,
    `- The SDK's own cost of the confirmed call's span (started, its eight attributes, ended) inside a call: a free tool recording it in its handler vs the same tool without, ${us(inCallSpan)} = ${share(inCallSpan)} a free call. The floor under any recorded tracing of a call.`,
    `- Limits and tracing together on a confirmed paid call: **${us(added(both.confirmed, base.confirmed))}** = **${share(added(both.confirmed, base.confirmed))}** a free call (budget < 0.2×).`,
    `- On a whole two-step paid call: ${us(added(both.whole, base.whole))} = ${share(added(both.whole, base.whole))} a free call.`,
    `- Tracing alone, recorded by an SDK: ${us(added(tracing.confirmed, base.confirmed))} = ${share(added(tracing.confirmed, base.confirmed))} a free call; with the client's traceparent: ${us(added(traced.confirmed, base.confirmed))} = ${share(added(traced.confirmed, base.confirmed))}. Limits alone: ${us(added(limitsOnly.confirmed, base.confirmed))} = ${share(added(limitsOnly.confirmed, base.confirmed))}.`,
    `- Tracing through the API with no SDK (the default) vs telemetry off: ${us(added(apiOnly.confirmed, base.confirmed))} on a confirmed call (${ratio(apiOnly.confirmed.median, base.confirmed.median)}).`,
    `- By this process's CPU time per call (free call ${us(freeCpuS.median)}), added to a confirmed call: limits and tracing ${cpuShare(both)} a free call; tracing alone ${cpuShare(tracing)}, with traceparent ${cpuShare(traced)}; limits alone ${cpuShare(limitsOnly)}; no SDK ${cpuShare(apiOnly)}.`,
    '',
    `The tracing code alone (\`isolatedTracing\`: the call span around a run step whose tool returns at once, no MCP, no store; ${ISOLATED_CALLS} calls each in ${ROUNDS} rounds, a tight loop where the SDK's code stays in the CPU's caches), CPU time per call:`,
    '',
    table(
      ['tracing', 'CPU per call'],
      isolated.map((r) => [r.name, `${r.us.toFixed(2)} µs`]),
    ),
    '',
  ].join('\n');
  return {
    title: 'Cost of limits and tracing',
    command: 'node --import tsx bench/limits-telemetry.ts',
    markdown,
    metrics: {
      freeMedianUs: freeS.median * 1000,
      confirmedBaseUs: base.confirmed.median * 1000,
      confirmedBothUs: both.confirmed.median * 1000,
      addedOverFree: added(both.confirmed, base.confirmed) / freeS.median,
      wholeAddedOverFree: added(both.whole, base.whole) / freeS.median,
      apiOnlyAddedUs: added(apiOnly.confirmed, base.confirmed) * 1000,
      tracingAddedOverFree: added(tracing.confirmed, base.confirmed) / freeS.median,
      tracedWithParentAddedOverFree: added(traced.confirmed, base.confirmed) / freeS.median,
      limitsAddedOverFree: added(limitsOnly.confirmed, base.confirmed) / freeS.median,
      freeCpuUs: freeCpuS.median * 1000,
      inCallSpanUs: inCallSpan * 1000,
      inCallSpanOverFree: inCallSpan / freeS.median,
      bothCpuAddedOverFree: addedCpu(both) / freeCpuS.median,
      tracingCpuAddedOverFree: addedCpu(tracing) / freeCpuS.median,
      apiOnlyCpuAddedUs: addedCpu(apiOnly) * 1000,
      ...Object.fromEntries(isolated.map((r, i) => [`isolated${i}Us`, r.us])),
    },
  };
}

runIfMain(import.meta.url, limitsTelemetry);
