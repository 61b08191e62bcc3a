// The cost of limits and tracing: a confirmed paid call (and a whole two-step paid call, where
// the limits' reservations happen) with limits and tracing off, tracing through the API with no
// SDK (the default), limits on, and limits plus tracing recorded by an SDK, all against a free call.
// Run: node --import tsx bench/limits-telemetry.ts
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { PayRouterOptions } from '../src/index.js';
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
}

async function timeCall(client: Client, name: string, args: Record<string, unknown>): Promise<number> {
  const started = performance.now();
  const result = await callTool(client, name, args);
  const elapsed = performance.now() - started;
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content)}`);
  return elapsed;
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
      name: 'limits on, tracing recorded by an SDK',
      options: { limits: LIMITS, telemetry: { tracerProvider } },
    },
  ];
  const worlds = await Promise.all(
    configs.map(async (c) => {
      const provider = new ZeroLatencyProvider({ mode: 'paid_on_first_read' });
      const world = benchServer({ providers: [provider], flow: 'two_step', ...c.options });
      const client = await benchClient(world.server);
      return { ...c, world, client, confirmed: [] as number[], whole: [] as number[] };
    }),
  );
  const free: number[] = [];
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
    for (let n = -WARMUP; n < 0; n++) await timeCall(w.client.client, 'work', { n });
    await whole(w, -WARMUP, WARMUP, false);
  }
  for (let i = 0; i < WARMUP; i++) await timeCall(worlds[0]!.client.client, 'work_free', { n: -1 - i });

  const perRound = Math.ceil(CALLS / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    const from = round * perRound;
    for (const w of worlds) await prepare(w, from, perRound);
    for (const w of worlds) await whole(w, from, perRound, true);
    for (let n = from; n < from + perRound; n++)
      free.push(await timeCall(worlds[0]!.client.client, 'work_free', { n }));
    // A confirmed paid call, the same call again after it ran: alternating blocks per config.
    for (const w of worlds) {
      for (let n = from; n < from + perRound; n++)
        w.confirmed.push(await timeCall(w.client.client, 'work', { n }));
    }
  }
  for (const w of worlds) {
    await w.client.close();
    await w.world.router.close();
  }
  await tracerProvider.shutdown();

  const freeS = summarize(free);
  const stats = worlds.map((w) => ({
    name: w.name,
    confirmed: summarize(w.confirmed),
    whole: summarize(w.whole),
  }));
  const base = stats[0]!;
  const both = stats[3]!;
  const apiOnly = stats[1]!;
  const added = (s: Summary, b: Summary) => s.median - b.median;
  const share = (ms: number) => `${(ms / freeS.median).toFixed(3)}×`;
  const markdown = [
    `Sequential calls over the SDK's InMemoryTransport, memoryStore, a zero-latency provider, ${CALLS} calls per`,
    `kind and configuration in ${ROUNDS} alternating blocks after ${WARMUP} warm-up calls. "Confirmed": a paid`,
    'call whose payment is already confirmed (paid, not yet run); "whole": call + confirm_payment, where the',
    "limits' reservations are made. The ledger is on in every configuration (its default).",
    '',
    table(
      ['configuration', 'confirmed median', 'confirmed p99', 'whole two-step median'],
      stats.map((s) => [s.name, us(s.confirmed.median), us(s.confirmed.p99), us(s.whole.median)]),
    ),
    '',
    `- Free call: ${us(freeS.median)} median.`,
    `- Limits and tracing together on a confirmed paid call: **${us(added(both.confirmed, base.confirmed))}** = **${share(added(both.confirmed, base.confirmed))}** a free call (budget < 0.2×).`,
    `- On a whole two-step paid call: ${us(added(both.whole, base.whole))} = ${share(added(both.whole, base.whole))} a free call.`,
    `- Tracing through the API with no SDK (the default) vs telemetry off: ${us(added(apiOnly.confirmed, base.confirmed))} on a confirmed call (${ratio(apiOnly.confirmed.median, base.confirmed.median)}).`,
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
    },
  };
}

runIfMain(import.meta.url, limitsTelemetry);
