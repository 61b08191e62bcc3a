// Scale: 10,000 pending payments waited on at once in one process (memory per intent, event-loop
// delay, provider reads/s), and 2,000 paid calls confirmed concurrently through two router
// instances sharing a real redis-server (runs counted: no double run).
// Run: node --expose-gc --import tsx bench/scale.ts
import { spawn } from 'node:child_process';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { type IntentRecord, memoryStore, PayRouter, redisStore } from '../src/index.js';
import { paymentOf, textOf } from '../test/support/paid-server.js';
import { startRedisServer } from '../test/support/redis-server.js';
import { ZeroLatencyProvider } from '../test/support/zero-latency-provider.js';
import { until } from './support/http.js';
import { benchSubject, callToolAs, quietLogger } from './support/mcp.js';
import { type BenchSection, runIfMain, table } from './support/section.js';
import { sleep, summarize } from './support/stats.js';
import { benchClient, benchServer, recordingStore } from './support/world.js';

const PENDING = Number(process.env['BENCH_SCALE_PENDING'] ?? 10_000);
const WINDOW_MS = 5000;
/** monitorEventLoopDelay samples every RESOLUTION_MS and records whole intervals: subtract it. */
const RESOLUTION_MS = 10;
const REDIS_CALLS = Number(process.env['BENCH_SCALE_REDIS_CALLS'] ?? 2000);
const REDIS_CONCURRENCY = 32;
/** Fresh processes per kind (control, paid), run alternately. */
const LAUNCH_ROUNDS = Number(process.env['BENCH_SCALE_ROUNDS'] ?? 3);
const RSS_SAMPLES = 5;

/**
 * An event-loop delay monitor that has already ticked. Its first interval only starts the clock
 * (Node records the gap between two ticks), so a stall that begins before that tick, such as a burst
 * of calls sent right after `enable()`, would never be recorded.
 */
async function primedLoopMonitor(): Promise<IntervalHistogram> {
  const loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  loop.enable();
  // Not reset afterwards: reset() stops the clock again. The idle ticks it recorded are ~0 ms.
  await sleep(3 * RESOLUTION_MS);
  return loop;
}

/** `global.gc`, also when node was started without --expose-gc. */
function gcFunction(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

async function settledHeap(gc: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(50);
  }
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

interface PendingResult {
  label: string;
  readsPerMinuteLimit: number;
  createMs: number;
  bytesPerIntent: number;
  recordJsonBytes: number;
  sample: IntentRecord | undefined;
  loopP50Ms: number;
  loopP99Ms: number;
  loopMaxMs: number;
  readsPerSecond: number;
  allPending: boolean;
}

/** PENDING unpaid payments, each a tools/call waiting in URL-elicitation mode. */
async function pendingAtOnce(label: string, readsPerMinute: number): Promise<PendingResult> {
  const gc = gcFunction();
  const provider = new ZeroLatencyProvider({ mode: 'manual', statusReadsPerMinute: readsPerMinute });
  const recorded = recordingStore(memoryStore());
  const world = benchServer({
    providers: [provider],
    store: recorded.store,
    timeouts: { paymentWaitMs: 300_000, callBudgetMs: 600_000 },
    // Distinct subjects (default limits are on): each pending call is its own payer's.
    subject: benchSubject,
  });
  let accepted = 0;
  const { client, close } = await benchClient(world.server, 'url', () => {
    accepted += 1;
    return { action: 'accept' };
  });
  const before = await settledHeap(gc);

  const started = performance.now();
  const calls = Array.from({ length: PENDING }, (_, n) =>
    callToolAs(client, `payer-${n}`, 'work', { n }, 900_000),
  );
  await until(() => accepted === PENDING, 'every link to be delivered', 300_000);
  const createMs = performance.now() - started;
  await sleep(500);
  const after = await settledHeap(gc);
  const sample = await recorded.store.get(recorded.ids[0] ?? '');

  const loop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  const readsBefore = provider.reads;
  loop.enable();
  await sleep(WINDOW_MS);
  loop.disable();
  const reads = provider.reads - readsBefore;

  await world.router.close(); // ends every wait: the calls answer with their payment-required results
  const results = await Promise.all(calls);
  const allPending = results.every((r) => paymentOf(r)?.status === 'pending');
  await close();
  await recorded.store.close();
  return {
    label,
    readsPerMinuteLimit: readsPerMinute,
    createMs,
    bytesPerIntent: (after - before) / PENDING,
    recordJsonBytes: sample === undefined ? 0 : Buffer.byteLength(JSON.stringify(sample)),
    sample,
    loopP50Ms: Math.max(0, loop.percentile(50) / 1e6 - RESOLUTION_MS),
    loopP99Ms: Math.max(0, loop.percentile(99) / 1e6 - RESOLUTION_MS),
    loopMaxMs: Math.max(0, loop.max / 1e6 - RESOLUTION_MS),
    readsPerSecond: reads / (WINDOW_MS / 1000),
    allPending,
  };
}

interface LaunchResult {
  label: string;
  startMs: number;
  rssPerCall: number;
  /** RSS per call less the free space inside V8's heap (see settledRss). */
  netRssPerCall: number;
  heapPerCall: number;
  loopP99Ms: number;
  loopMaxMs: number;
  ok: boolean;
}

/**
 * RSS after GC: the median of RSS_SAMPLES readings 100 ms apart, each after its own GC; and the
 * same less the free space inside V8's heap (committed, unused). That free space is slack the heap
 * grew by during the burst, and how much depends on when its collections ran (23–40 MB for the
 * same 10,000 calls between runs on this host), while the live heap moved by under 1%.
 */
async function settledRss(gc: () => void): Promise<{ rss: number; net: number }> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(50);
  }
  const samples: number[] = [];
  for (let i = 0; i < RSS_SAMPLES; i++) {
    gc();
    await sleep(100);
    samples.push(process.memoryUsage().rss);
  }
  const rss = summarize(samples).median;
  const free = getHeapSpaceStatistics().reduce(
    (sum, space) => sum + space.space_size - space.space_used_size,
    0,
  );
  return { rss, net: rss - free };
}

/**
 * PENDING calls held open from launch, start-up burst included: either paid calls waiting for their
 * payment (URL elicitation, each its own payer, Walleot's read limit), or the control, the same
 * number of calls of a free tool on the same kind of server whose handler waits as long. Event-loop
 * delay is recorded from the first call to the end of the wait; RSS and heap after GC, before the
 * calls and once all are held.
 */
async function heldFromLaunch(kind: 'paid' | 'control'): Promise<LaunchResult> {
  const gc = gcFunction();
  const provider = new ZeroLatencyProvider({ mode: 'manual', statusReadsPerMinute: 1000 });
  const world = benchServer({
    providers: [provider],
    timeouts: { paymentWaitMs: 300_000, callBudgetMs: 600_000 },
    subject: benchSubject,
  });
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let held = 0;
  world.server.registerTool(
    'work_held',
    { description: 'Work (free, held open)', inputSchema: { n: z.number() } },
    async ({ n }) => {
      held += 1;
      await gate;
      return { content: [{ type: 'text', text: `done ${n}` }] };
    },
  );
  const { client, close } = await benchClient(world.server, 'url', () => {
    held += 1;
    return { action: 'accept' };
  });
  const rssBefore = await settledRss(gc);
  const heapBefore = await settledHeap(gc);
  const loop = await primedLoopMonitor();
  const started = performance.now();
  const calls = Array.from({ length: PENDING }, (_, n) =>
    kind === 'paid'
      ? callToolAs(client, `payer-${n}`, 'work', { n }, 900_000)
      : callToolAs(client, `payer-${n}`, 'work_held', { n }, 900_000),
  );
  await until(() => held === PENDING, 'every call to be held open', 300_000);
  const startMs = performance.now() - started;
  await sleep(WINDOW_MS);
  loop.disable();
  const rssAfter = await settledRss(gc);
  const heapAfter = await settledHeap(gc);
  release();
  await world.router.close();
  const results = await Promise.all(calls);
  const ok =
    kind === 'paid'
      ? results.every((r) => paymentOf(r)?.status === 'pending')
      : results.every((r) => r.isError !== true);
  await close();
  await world.store.close();
  return {
    label: kind === 'paid' ? 'paid calls waiting for payment' : 'control: free tool held open',
    startMs,
    rssPerCall: (rssAfter.rss - rssBefore.rss) / PENDING,
    netRssPerCall: (rssAfter.net - rssBefore.net) / PENDING,
    heapPerCall: (heapAfter - heapBefore) / PENDING,
    loopP99Ms: Math.max(0, loop.percentile(99) / 1e6 - RESOLUTION_MS),
    loopMaxMs: Math.max(0, loop.max / 1e6 - RESOLUTION_MS),
    ok,
  };
}

const HELD_MARK = 'scale-held-result ';

/** One `heldFromLaunch` in a fresh node process: its own heap, code space and allocator state. */
function heldInChild(kind: 'paid' | 'control'): Promise<LaunchResult> {
  return new Promise((resolve, reject) => {
    const loader = fileURLToPath(new URL('./support/as-built.mjs', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--import', loader, fileURLToPath(import.meta.url)],
      { env: { ...process.env, BENCH_SCALE_HELD: kind }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(HELD_MARK));
      if (code !== 0 || line === undefined) reject(new Error(`scale child (${kind}) exited ${code}`));
      else resolve(JSON.parse(line.slice(HELD_MARK.length)) as LaunchResult);
    });
  });
}

interface LaunchSummary extends LaunchResult {
  /** Lowest and highest RSS per call over the rounds. */
  rssRange: [number, number];
  rounds: number;
}

/**
 * Control and paid, each in LAUNCH_ROUNDS fresh processes run alternately (control, paid,
 * control, …), so drift in the host's state falls on both; every figure is the median over its
 * rounds. In one process the second measure inherits the first one's heap pages and allocator state,
 * and a single reading of RSS moved by a third between runs.
 */
async function heldFromLaunchRounds(): Promise<{ control: LaunchSummary; paid: LaunchSummary }> {
  const runs: Record<'paid' | 'control', LaunchResult[]> = { paid: [], control: [] };
  for (let round = 0; round < LAUNCH_ROUNDS; round++) {
    runs.control.push(await heldInChild('control'));
    runs.paid.push(await heldInChild('paid'));
  }
  const summary = (results: LaunchResult[]): LaunchSummary => {
    const mid = (pick: (r: LaunchResult) => number) => summarize(results.map(pick)).median;
    const rss = summarize(results.map((r) => r.rssPerCall));
    return {
      label: results[0]!.label,
      startMs: mid((r) => r.startMs),
      rssPerCall: rss.median,
      netRssPerCall: mid((r) => r.netRssPerCall),
      heapPerCall: mid((r) => r.heapPerCall),
      loopP99Ms: mid((r) => r.loopP99Ms),
      loopMaxMs: mid((r) => r.loopMaxMs),
      ok: results.every((r) => r.ok),
      rssRange: [rss.min, rss.max],
      rounds: results.length,
    };
  };
  return { control: summary(runs.control), paid: summary(runs.paid) };
}

/** Heap of PENDING copies of a real pending intent record in a fresh memoryStore, per record. */
async function storeBytesPerIntent(sample: IntentRecord): Promise<number> {
  const gc = gcFunction();
  const store = memoryStore();
  const before = await settledHeap(gc);
  for (let i = 0; i < PENDING; i++) {
    const id = `pay_${String(i).padStart(24, '0')}`;
    await store.insert({
      ...sample,
      id,
      binding: {
        ...sample.binding,
        argsHash: `${sample.binding.argsHash.slice(0, 56)}${String(i).padStart(8, '0')}`,
      },
      attempts: sample.attempts.map((a) => ({ ...a, paymentId: `${a.paymentId}_${i}` })),
    });
  }
  const after = await settledHeap(gc);
  await store.close();
  return (after - before) / PENDING;
}

interface RedisResult {
  paidCalls: number;
  toolCalls: number;
  elapsedMs: number;
  ranOnce: number;
  doubleRuns: number;
  neverRan: number;
  wrongResults: number;
}

/** Two routers, one redis-server: every payment confirmed from both instances at once. */
async function twoInstancesOverRedis(): Promise<RedisResult> {
  const redis = await startRedisServer();
  const prefix = `bench:${Date.now()}:`;
  const provider = new ZeroLatencyProvider({ mode: 'manual' });
  const runs = new Map<number, number>();
  const instances = await Promise.all(
    ['A', 'B'].map(async (name) => {
      const connection = new Redis(redis.url, { connectionName: `bench-${name}` });
      const server = new McpServer({ name: `bench-${name}`, version: '1.0.0' });
      const store = redisStore({ client: connection, prefix });
      const router = new PayRouter(server, {
        providers: [provider],
        store,
        flow: 'two_step',
        // One user per paid call, the same on both instances (as a token verifier's `sub` would
        // make it); default limits are on, so one user for all 2,000 would be refused.
        subject: (extra) => benchSubject(extra) ?? 'bench-user',
        logger: quietLogger,
        confirmation: { pendingTtlMs: 50, poll: { initialMs: 20, maxMs: 100 } },
      });
      server.registerTool(
        'work',
        { description: 'Work', inputSchema: { n: z.number() }, price: { amount: '0.05', currency: 'USD' } },
        async ({ n }) => {
          runs.set(n, (runs.get(n) ?? 0) + 1);
          return { content: [{ type: 'text', text: `done ${n}` }] };
        },
      );
      const { client, close } = await benchClient(server);
      return { name, client, close, router, store, connection };
    }),
  );
  const [A, B] = instances as [(typeof instances)[0], (typeof instances)[0]];
  let toolCalls = 0;
  let wrongResults = 0;
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (let n = next++; n < REDIS_CALLS; n = next++) {
      const as = `payer-${n}`;
      const pending = paymentOf(await callToolAs(A.client, as, 'work', { n }))!;
      const intent = (await A.store.get(pending.payment_id))!;
      provider.pay(intent.attempts[0]!.paymentId);
      // The same paid call confirmed and retried on both instances at the same moment.
      const answers = await Promise.all([
        callToolAs(A.client, as, 'confirm_payment', { payment_id: pending.payment_id }),
        callToolAs(B.client, as, 'confirm_payment', { payment_id: pending.payment_id }),
        callToolAs(B.client, as, 'work', { n }),
        callToolAs(A.client, as, 'work', { n }),
      ]);
      toolCalls += 1 + answers.length;
      // A retry after the result was delivered is a new call (a new payment): only the first
      // answers of each instance must carry the result; none may be a second run.
      wrongResults += answers.slice(0, 2).filter((r) => textOf(r) !== `done ${n}`).length;
    }
  };
  await Promise.all(Array.from({ length: REDIS_CONCURRENCY }, worker));
  const elapsedMs = performance.now() - started;
  const counts = Array.from({ length: REDIS_CALLS }, (_, n) => runs.get(n) ?? 0);
  for (const instance of instances) {
    await instance.close();
    await instance.router.close();
    await instance.store.close();
    instance.connection.disconnect();
  }
  await redis.stop();
  return {
    paidCalls: REDIS_CALLS,
    toolCalls,
    elapsedMs,
    ranOnce: counts.filter((c) => c === 1).length,
    doubleRuns: counts.filter((c) => c > 1).length,
    neverRan: counts.filter((c) => c === 0).length,
    wrongResults,
  };
}

export async function scale(): Promise<BenchSection> {
  const { control, paid: paidLaunch } = await heldFromLaunchRounds();
  const walleotLike = await pendingAtOnce("Walleot's limit (1,000 reads/min)", 1000);
  const unlimited = await pendingAtOnce('no read limit', Number.POSITIVE_INFINITY);
  const storeBytes = walleotLike.sample === undefined ? 0 : await storeBytesPerIntent(walleotLike.sample);
  const redis = await twoInstancesOverRedis();
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  const markdown = [
    `**${PENDING.toLocaleString('en')} pending payments in one process**: one SDK client (InMemoryTransport) sends`,
    `${PENDING.toLocaleString('en')} paid calls at once in URL-elicitation mode; each link is accepted and each call then`,
    `waits for its payment (memoryStore, in-process zero-latency provider that never reports paid). Heap`,
    `measured after GC (\`--expose-gc\`) before the calls and once all are waiting; event-loop delay`,
    `(\`monitorEventLoopDelay\`, ${RESOLUTION_MS} ms resolution, the ${RESOLUTION_MS} ms sampling interval subtracted) and provider`,
    `reads over ${WINDOW_MS / 1000} s of waiting.`,
    '',
    table(
      [
        'provider read limit',
        'time to start all',
        'heap per waiting call',
        'stored record (JSON)',
        'loop delay p50',
        'p99',
        'max',
        'provider reads/s',
      ],
      [walleotLike, unlimited].map((r) => [
        r.label,
        `${(r.createMs / 1000).toFixed(1)} s`,
        kib(r.bytesPerIntent),
        r.recordJsonBytes === 0 ? 'n/a' : `${r.recordJsonBytes} B`,
        `${r.loopP50Ms.toFixed(1)} ms`,
        `${r.loopP99Ms.toFixed(1)} ms`,
        `${r.loopMaxMs.toFixed(1)} ms`,
        r.readsPerSecond.toFixed(1),
      ]),
    ),
    '',
    `**From launch, against the control** (issue 10's measure): ${PENDING.toLocaleString('en')} calls sent at once,`,
    `each by its own payer (default limits on), event-loop`,
    `delay recorded from the first call through ${WINDOW_MS / 1000} s of waiting (start-up burst included; the monitor`,
    `has ticked before the calls are sent, or the burst's stall would fall before its first tick and go unrecorded),`,
    `RSS and heap after GC before and once all are held.`,
    `The control is a free tool on the same kind of server whose handler stays open as long. Each of`,
    `control and paid runs in ${control.rounds} fresh processes, alternately (control, paid, control, …); RSS is the`,
    `median of ${RSS_SAMPLES} readings after GC, also given less the free space inside V8's heap (slack that varied by`,
    `tens of MB between runs with the live heap the same), and every figure the median over the rounds. The sources are`,
    `compiled as the package is built (esbuild without \`keepNames\`, \`bench/support/as-built.mjs\`): tsx keeps`,
    `names, which adds ~256 B to every named closure a waiting call holds.`,
    '',
    table(
      [
        'calls held open',
        'time to hold all',
        'RSS per call',
        'RSS per call, lowest–highest round',
        "RSS less V8's free heap",
        'heap per call',
        'loop delay p99',
        'max',
        'answered',
      ],
      [control, paidLaunch].map((r) => [
        r.label,
        `${(r.startMs / 1000).toFixed(1)} s`,
        kib(r.rssPerCall),
        `${kib(r.rssRange[0])} – ${kib(r.rssRange[1])}`,
        kib(r.netRssPerCall),
        kib(r.heapPerCall),
        `${r.loopP99Ms.toFixed(1)} ms`,
        `${r.loopMaxMs.toFixed(1)} ms`,
        r.ok ? 'yes' : 'NO',
      ]),
    ),
    '',
    `- RSS per pending paid call above the control: **${kib(paidLaunch.rssPerCall - control.rssPerCall)}** (target ≤ 8 KB); less V8's free heap: ${kib(paidLaunch.netRssPerCall - control.netRssPerCall)}; heap: ${kib(paidLaunch.heapPerCall - control.heapPerCall)}.`,
    `- Event-loop delay from launch: p99 **${paidLaunch.loopP99Ms.toFixed(1)} ms** (target < 50 ms), max **${paidLaunch.loopMaxMs.toFixed(1)} ms** = ${(paidLaunch.loopMaxMs / Math.max(control.loopMaxMs, 1)).toFixed(2)}× the control's ${control.loopMaxMs.toFixed(1)} ms (target ≤ 1.5×).`,
    '',
    `Heap per waiting call includes both sides of the MCP request held in this one process (client and`,
    `server), the waiter, the intent record and its indexes. The intent record alone (the same record`,
    `inserted ${PENDING.toLocaleString('en')} times into a fresh memoryStore) costs **${kib(storeBytes)}** of heap. Every call`,
    `answered "pending" after the router closed: ${walleotLike.allPending && unlimited.allPending ? 'yes' : 'NO'}.`,
    '',
    `**${REDIS_CALLS.toLocaleString('en')} paid calls over two router instances sharing one redis-server** (two ioredis`,
    `connections, redisStore, each paid call by its own payer, the same on both): each call is started on A, paid, then confirmed and`,
    `retried on A and B at the same moment (4 concurrent requests per payment, ${REDIS_CONCURRENCY} payments in flight).`,
    '',
    table(
      [
        'paid calls',
        'tool calls',
        'time',
        'paid calls/s',
        'ran once',
        'ran twice or more',
        'never ran',
        'confirmations without the result',
      ],
      [
        [
          redis.paidCalls,
          redis.toolCalls,
          `${(redis.elapsedMs / 1000).toFixed(1)} s`,
          (redis.paidCalls / (redis.elapsedMs / 1000)).toFixed(0),
          redis.ranOnce,
          `**${redis.doubleRuns}**`,
          redis.neverRan,
          redis.wrongResults,
        ],
      ],
    ),
  ].join('\n');
  return {
    title: 'Scale',
    command: 'node --expose-gc --import tsx bench/scale.ts',
    markdown,
    metrics: {
      launchRssPerCallAboveControl: paidLaunch.rssPerCall - control.rssPerCall,
      launchNetRssPerCallAboveControl: paidLaunch.netRssPerCall - control.netRssPerCall,
      launchHeapPerCallAboveControl: paidLaunch.heapPerCall - control.heapPerCall,
      launchLoopP99Ms: paidLaunch.loopP99Ms,
      launchLoopMaxMs: paidLaunch.loopMaxMs,
      controlLoopMaxMs: control.loopMaxMs,
      bytesPerWaitingCall: walleotLike.bytesPerIntent,
      storeBytesPerIntent: storeBytes,
      loopP99MsLimited: walleotLike.loopP99Ms,
      loopP99MsUnlimited: unlimited.loopP99Ms,
      readsPerSecondLimited: walleotLike.readsPerSecond,
      readsPerSecondUnlimited: unlimited.readsPerSecond,
      redisDoubleRuns: redis.doubleRuns,
      redisNeverRan: redis.neverRan,
      redisPaidCallsPerSecond: redis.paidCalls / (redis.elapsedMs / 1000),
    },
  };
}

const held = process.env['BENCH_SCALE_HELD'];
if (held === 'paid' || held === 'control') {
  heldFromLaunch(held).then(
    (result) => {
      process.stdout.write(`${HELD_MARK}${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
} else {
  runIfMain(import.meta.url, scale);
}
