// The cost of limits and tracing: a confirmed paid call (and a whole two-step paid call, where
// the limits' reservations happen) with limits and tracing off, tracing through the API with no
// SDK (the default), limits on, tracing recorded by an SDK (with and without a client trace in
// `_meta.traceparent`), and limits plus tracing, all against a free call on its own server.
// Run: node --import tsx bench/limits-telemetry.ts
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
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
import { benchClient, benchServer } from './support/world.js';

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
  const result = meta
    ? ((await client.callTool({ name, arguments: args, _meta: meta })) as Awaited<
        ReturnType<typeof callTool>
      >)
    : await callTool(client, name, args);
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
 * The tracing code of one confirmed paid call alone, no MCP and no store: the call span and its
 * run step around a tool that returns at once, by CPU time of this process per call. The floor is
 * the SDK's own cost of the same two spans with the same attributes, started and ended directly.
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
    const span = tracer.startSpan(
      'payrouter.paid_call',
      { kind: SpanKind.SERVER, attributes: { 'payrouter.tool': 'work' } },
      ROOT_CONTEXT,
    );
    const child = tracer.startSpan('payrouter.run', undefined, trace.setSpan(ROOT_CONTEXT, span));
    await Promise.resolve(result);
    child.setAttribute('payrouter.outcome', 'ok');
    child.end();
    span.setAttribute('payrouter.outcome', 'ran');
    span.setAttribute('payrouter.amount', 5);
    span.setAttribute('payrouter.currency', 'USD');
    span.setAttribute('payrouter.provider', 'zero');
    span.setAttribute('payrouter.status', 'paid');
    span.end();
  };
  const kinds: Array<[string, () => Promise<unknown>]> = [
    ['telemetry off', through(new Telemetry({ enabled: false }))],
    ['through the API, no SDK', through(new Telemetry({}))],
    ['recorded by an SDK', through(new Telemetry({ tracerProvider }))],
    ["the SDK's floor: the same two spans, directly", floor],
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
  const worlds = await Promise.all(
    configs.map(async (c) => {
      const provider = new ZeroLatencyProvider({ mode: 'paid_on_first_read' });
      const world = benchServer({ providers: [provider], flow: 'two_step', ...c.options });
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
  for (let i = 0; i < WARMUP; i++) await timeCall(worlds[0]!.client.client, 'work_free', { n: -1 - i });

  const perRound = Math.ceil(CALLS / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    const from = round * perRound;
    for (const w of worlds) await prepare(w, from, perRound);
    // Call by call, the configurations in turn (starting one further each time), with a free call
    // among them: on a shared machine every configuration sees the same load, which comes and goes
    // faster than a block of calls takes.
    for (let n = from; n < from + perRound; n++)
      for (let i = 0; i < worlds.length; i++) await whole(worlds[(n + i) % worlds.length]!, n, 1, true);
    for (let n = from; n < from + perRound; n++) {
      const turn = n % (worlds.length + 1);
      for (let i = 0; i <= worlds.length; i++) {
        const k = (turn + i) % (worlds.length + 1);
        if (k === worlds.length)
          free.push(await timeCall(worlds[0]!.client.client, 'work_free', { n }, undefined, freeCpu));
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
    `kind and configuration in ${ROUNDS} rounds after ${WARMUP} warm-up calls, the configurations taking turns call by call. "Confirmed": a paid`,
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
    `- Limits and tracing together on a confirmed paid call: **${us(added(both.confirmed, base.confirmed))}** = **${share(added(both.confirmed, base.confirmed))}** a free call (budget < 0.2×).`,
    `- On a whole two-step paid call: ${us(added(both.whole, base.whole))} = ${share(added(both.whole, base.whole))} a free call.`,
    `- Tracing alone, recorded by an SDK: ${us(added(tracing.confirmed, base.confirmed))} = ${share(added(tracing.confirmed, base.confirmed))} a free call; with the client's traceparent: ${us(added(traced.confirmed, base.confirmed))} = ${share(added(traced.confirmed, base.confirmed))}. Limits alone: ${us(added(limitsOnly.confirmed, base.confirmed))} = ${share(added(limitsOnly.confirmed, base.confirmed))}.`,
    `- Tracing through the API with no SDK (the default) vs telemetry off: ${us(added(apiOnly.confirmed, base.confirmed))} on a confirmed call (${ratio(apiOnly.confirmed.median, base.confirmed.median)}).`,
    `- By this process's CPU time per call (free call ${us(freeCpuS.median)}), added to a confirmed call: limits and tracing ${cpuShare(both)} a free call; tracing alone ${cpuShare(tracing)}, with traceparent ${cpuShare(traced)}; limits alone ${cpuShare(limitsOnly)}; no SDK ${cpuShare(apiOnly)}.`,
    '',
    `The tracing code alone (\`isolatedTracing\`: the call span and its run step around a tool that returns at once, no MCP, no store; ${ISOLATED_CALLS} calls each in ${ROUNDS} rounds), CPU time per call:`,
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
      bothCpuAddedOverFree: addedCpu(both) / freeCpuS.median,
      tracingCpuAddedOverFree: addedCpu(tracing) / freeCpuS.median,
      apiOnlyCpuAddedUs: addedCpu(apiOnly) * 1000,
      ...Object.fromEntries(isolated.map((r, i) => [`isolated${i}Us`, r.us])),
    },
  };
}

runIfMain(import.meta.url, limitsTelemetry);
