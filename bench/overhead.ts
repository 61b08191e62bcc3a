// Router overhead: the same tool free vs paid (payment already confirmed), and a whole paid call
// against an in-process zero-latency provider. Run: node --import tsx bench/overhead.ts
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { memoryStore } from '../src/index.js';
import { FakeProvider, fakeIntent } from '../test/support/fake-provider.js';
import { paymentOf } from '../test/support/paid-server.js';
import { ZeroLatencyProvider } from '../test/support/zero-latency-provider.js';
import { callTool } from './support/mcp.js';
import { profileShares } from './support/profile.js';
import { type BenchSection, runIfMain, table } from './support/section.js';
import { ratio, type Summary, summarize, us } from './support/stats.js';
import { benchClient, benchServer, countingStore, toolResult } from './support/world.js';

const CALLS = Number(process.env['BENCH_OVERHEAD_CALLS'] ?? 5000);
const ROUNDS = 5;
const WARMUP = 500;
const WHOLE_CALLS = Math.min(CALLS, 2000);

async function timeCall(client: Client, name: string, args: Record<string, unknown>): Promise<number> {
  const started = performance.now();
  const result = await callTool(client, name, args);
  const elapsed = performance.now() - started;
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content)}`);
  return elapsed;
}

/** Create `count` paid intents for `work` with n in [from, from+count) and confirm each (no run yet). */
async function preparePaid(
  client: Client,
  confirm: (intentId: string) => Promise<unknown>,
  from: number,
  count: number,
): Promise<void> {
  for (let n = from; n < from + count; n++) {
    const pending = await callTool(client, 'work', { n });
    const payment = paymentOf(pending);
    if (payment?.status !== 'pending') throw new Error(`expected a pending payment, got ${payment?.status}`);
    await confirm(payment.payment_id);
  }
}

export async function overhead(): Promise<BenchSection> {
  // --- free vs cache-hit paid, same tool, same handler ---
  const provider = new ZeroLatencyProvider({ mode: 'paid_on_first_read' });
  const world = benchServer({ providers: [provider], flow: 'two_step' });
  const { client, close } = await benchClient(world.server);
  const confirm = (id: string) => world.router.checkPayment(id);
  // A free tool whose result carries the `_meta` of a confirmed paid call's result (payment and
  // receipt): what the SDK's own handling of that `_meta` costs, a floor under the paid call's ratio.
  let paidMeta: Record<string, unknown> | undefined;
  world.server.registerTool(
    'work_free_meta',
    { description: "Work (free, with a paid result's _meta)", inputSchema: { n: z.number() } },
    async ({ n }) => ({ ...toolResult(n), _meta: paidMeta }),
  );

  // Warm up both paths (JIT, SDK caches); n < 0 keeps warm-up intents apart from measured ones.
  for (let i = 0; i < WARMUP; i++) await timeCall(client, 'work_free', { n: -1 - i });
  await preparePaid(client, confirm, -WARMUP, WARMUP);
  paidMeta = (await callTool(client, 'work', { n: -WARMUP }))._meta;
  for (let n = -WARMUP + 1; n < 0; n++) await timeCall(client, 'work', { n });
  for (let i = 0; i < WARMUP; i++) await timeCall(client, 'work_free_meta', { n: -1 - i });

  const free: number[] = [];
  const freeMeta: number[] = [];
  const paid: number[] = [];
  const perRound = Math.ceil(CALLS / ROUNDS);
  let hitReads = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const from = round * perRound;
    // Untimed: each paid call gets its own confirmed payment, as a user who paid would have.
    await preparePaid(client, confirm, from, perRound);
    // Alternate free and paid blocks so drift (GC, heap growth) hits both alike.
    for (let n = from; n < from + perRound; n++) free.push(await timeCall(client, 'work_free', { n }));
    for (let n = from; n < from + perRound; n++)
      freeMeta.push(await timeCall(client, 'work_free_meta', { n }));
    const readsBefore = provider.reads;
    for (let n = from; n < from + perRound; n++) paid.push(await timeCall(client, 'work', { n }));
    hitReads += provider.reads - readsBefore;
  }
  const freeS = summarize(free);
  const freeMetaS = summarize(freeMeta);
  const paidS = summarize(paid);

  // Where a cache-hit paid call's time goes: the same calls again, under the CPU profiler.
  const profiled = Math.min(2000, CALLS);
  await preparePaid(client, confirm, CALLS, profiled);
  const freeShares = await profileShares(async () => {
    for (let n = CALLS; n < CALLS + profiled; n++) await timeCall(client, 'work_free', { n });
  });
  const shares = await profileShares(async () => {
    for (let n = CALLS; n < CALLS + profiled; n++) await timeCall(client, 'work', { n });
  });

  // --- store operations per cache-hit paid call (separate router, counting proxy store) ---
  const counted = countingStore(memoryStore());
  const countProvider = new ZeroLatencyProvider({ mode: 'paid_on_first_read' });
  const countWorld = benchServer({ providers: [countProvider], flow: 'two_step', store: counted.store });
  const countClient = await benchClient(countWorld.server);
  const countConfirm = (id: string) => countWorld.router.checkPayment(id);
  await preparePaid(countClient.client, countConfirm, 0, 100);
  counted.counts.clear();
  for (let n = 0; n < 100; n++) await timeCall(countClient.client, 'work', { n });
  const storeOps = [...counted.counts.entries()].map(([op, count]) => `${op} ${count / 100}`).join(', ');

  // --- a whole paid call: create -> paid -> run ---
  // URL elicitation: one tools/call (create, link accepted at once, first poll says paid, run).
  // Twice, on two routers, in alternating blocks: one whose confirmation cache is otherwise empty
  // (the usual case on a quiet server), one that keeps another payment's status cached.
  const urlProvider = new ZeroLatencyProvider({ mode: 'paid_on_first_read' });
  const urlWorld = benchServer({ providers: [urlProvider] });
  // The control: a free tool on the same server making the same elicitation round trip (one
  // URL-mode elicitInput, accepted) with no router in the way.
  let controlElicitations = 0;
  urlWorld.server.registerTool(
    'work_elicit_free',
    { description: 'Work (free, asks the user to open a link)', inputSchema: { n: z.number() } },
    async ({ n }, extra) => {
      const answer = await urlWorld.server.server.elicitInput(
        {
          mode: 'url',
          message: 'Open this link to continue.',
          url: `https://pay.example/control/${n}`,
          elicitationId: `control-${n}`,
        },
        { signal: extra.signal },
      );
      if (answer.action === 'accept') controlElicitations++;
      return toolResult(n);
    },
  );
  // The floor: a free tool doing what the SDK does for a URL paid call with no router work in
  // between: the router's own elicitation (its message and link, as captured), the completion
  // notice URL mode sends once paid, and the paid result with its `_meta`.
  let routerElicitation: Record<string, unknown> | undefined;
  let paidUrlResult: CallToolResult | undefined;
  urlWorld.server.registerTool(
    'work_elicit_floor',
    { description: 'Work (free, the SDK side of a URL paid call)', inputSchema: { n: z.number() } },
    async ({ n }, extra) => {
      const params = { ...routerElicitation, elicitationId: `floor-${n}` } as Parameters<
        typeof urlWorld.server.server.elicitInput
      >[0];
      await urlWorld.server.server.elicitInput(params, {
        signal: extra.signal,
        relatedRequestId: extra.requestId,
      });
      await urlWorld.server.server
        .createElicitationCompletionNotifier(`floor-${n}`, { relatedRequestId: extra.requestId })()
        .catch(() => {});
      return { ...paidUrlResult, content: toolResult(n).content };
    },
  );
  const urlClient = await benchClient(urlWorld.server, 'url', (request) => {
    if (routerElicitation === undefined && request.mode === 'url') routerElicitation = { ...request };
    return { action: 'accept' };
  });
  const residentProvider = new ZeroLatencyProvider({ mode: 'paid_on_first_read' });
  const residentWorld = benchServer({ providers: [residentProvider] });
  const residentClient = await benchClient(residentWorld.server, 'url', () => ({ action: 'accept' }));
  {
    // An expired payment's status, cached for 5 minutes: this cache never drops back to zero entries.
    const resident = fakeIntent(new FakeProvider(), 'pay_residentresidentresident', 'expired');
    await residentWorld.store.insert(resident);
    await residentWorld.router.checkPayment(resident.id);
  }
  const whole: number[] = [];
  const wholeResident: number[] = [];
  const control: number[] = [];
  const urlFloor: number[] = [];
  paidUrlResult = await callTool(urlClient.client, 'work', { n: -201 });
  for (let n = -200; n < 0; n++) {
    await timeCall(urlClient.client, 'work', { n });
    await timeCall(urlClient.client, 'work_elicit_floor', { n });
    await timeCall(urlClient.client, 'work_elicit_free', { n });
    await timeCall(residentClient.client, 'work', { n });
  }
  const block = 250;
  for (let from = 0; from < WHOLE_CALLS; from += block) {
    for (let n = from; n < from + block; n++)
      control.push(await timeCall(urlClient.client, 'work_elicit_free', { n }));
    for (let n = from; n < from + block; n++) whole.push(await timeCall(urlClient.client, 'work', { n }));
    for (let n = from; n < from + block; n++)
      urlFloor.push(await timeCall(urlClient.client, 'work_elicit_floor', { n }));
    for (let n = from; n < from + block; n++) {
      wholeResident.push(await timeCall(residentClient.client, 'work', { n }));
    }
  }
  const wholeS = summarize(whole);
  const controlS = summarize(control);
  const residentS = summarize(wholeResident);
  const urlFloorS = summarize(urlFloor);

  // Two-step: the call returns the payment, confirm_payment confirms (first read: paid) and runs.
  const twoProvider = new ZeroLatencyProvider({ mode: 'paid_on_first_read' });
  const twoWorld = benchServer({ providers: [twoProvider], flow: 'two_step' });
  // The floor: two free tools answering with the very results of a two-step call's two calls (the
  // payment-required result, then the paid result): the SDK's share of them with no router work.
  let requiredResult: CallToolResult | undefined;
  let confirmedResult: CallToolResult | undefined;
  twoWorld.server.registerTool(
    'work_required_floor',
    { description: 'Work (free, answers as a payment-required call)', inputSchema: { n: z.number() } },
    async () => requiredResult ?? toolResult(0),
  );
  twoWorld.server.registerTool(
    'confirm_floor',
    { description: 'Confirm (free, answers as a paid run)', inputSchema: { payment_id: z.string() } },
    async () => confirmedResult ?? toolResult(0),
  );
  const twoClient = await benchClient(twoWorld.server);
  const twoStep: number[] = [];
  const twoFloor: number[] = [];
  requiredResult = await callTool(twoClient.client, 'work', { n: -201 });
  confirmedResult = await callTool(twoClient.client, 'confirm_payment', {
    payment_id: paymentOf(requiredResult)!.payment_id,
  });
  for (let n = -200; n < WHOLE_CALLS; n++) {
    let started = performance.now();
    const pending = paymentOf(await callTool(twoClient.client, 'work', { n }));
    const done = await callTool(twoClient.client, 'confirm_payment', { payment_id: pending!.payment_id });
    if (done.isError) throw new Error(`confirm_payment failed: ${JSON.stringify(done.content)}`);
    if (n >= 0) twoStep.push(performance.now() - started);
    started = performance.now();
    await callTool(twoClient.client, 'work_required_floor', { n });
    await callTool(twoClient.client, 'confirm_floor', { payment_id: pending!.payment_id });
    if (n >= 0) twoFloor.push(performance.now() - started);
  }
  const twoS = summarize(twoStep);
  const twoFloorS = summarize(twoFloor);
  const runsOk =
    world.log.starts.filter((s) => s.tool === 'work').length === CALLS + WARMUP + profiled &&
    urlWorld.log.starts.length === WHOLE_CALLS + 201 &&
    residentWorld.log.starts.length === WHOLE_CALLS + 200 &&
    twoWorld.log.starts.length === WHOLE_CALLS + 201;

  for (const c of [close, countClient.close, urlClient.close, residentClient.close, twoClient.close])
    await c();
  for (const w of [world, countWorld, urlWorld, residentWorld, twoWorld]) await w.router.close();

  const addedMedian = paidS.median - freeS.median;
  const row = (name: string, s: Summary) => [name, s.n, us(s.median), us(s.p95), us(s.p99)];
  const markdown = [
    `Sequential calls over the SDK's InMemoryTransport (client and server in one process), memoryStore,`,
    `${CALLS} calls per kind in ${ROUNDS} alternating blocks after ${WARMUP} warm-up calls. The paid call's`,
    `payment is already confirmed (status \`paid\` in the store): it is the call a user makes after paying.`,
    '',
    table(
      ['call', 'n', 'median', 'p95', 'p99'],
      [
        row('free tool', freeS),
        row("free tool returning a confirmed paid call's `_meta` (the SDK's share of it)", freeMetaS),
        row('paid tool, payment confirmed (cache hit)', paidS),
        row('free tool making one URL elicitation (control for the next line)', controlS),
        row('whole paid call, URL elicitation (create → elicit → paid → run)', wholeS),
        row(
          '  its floor: a free tool making the same elicitation and completion notice, answering the same result',
          urlFloorS,
        ),
        row("  same, another payment's status kept in the confirmation cache", residentS),
        row('whole paid call, two-step (call + confirm_payment)', twoS),
        row('  its floor: two free tools answering with the same two results', twoFloorS),
      ],
    ),
    '',
    `- Paid (confirmed) vs free: **${ratio(paidS.median, freeS.median)}** median, ${ratio(paidS.p99, freeS.p99)} p99 (target ≤ 1.3×).`,
    `- Router adds **${us(addedMedian)}** median per paid call (target < 100 µs).`,
    `- The SDK alone, handling the \`_meta\` a confirmed paid result carries (\`payrouter/payment\` and \`payrouter/receipt\`, ${JSON.stringify(paidMeta ?? {}).length} bytes), on a free tool: ${ratio(freeMetaS.median, freeS.median)} a free call, of the ${ratio(paidS.median, freeS.median)}.`,
    `- Whole two-step paid call vs free: **${ratio(twoS.median, freeS.median)}** median (target ≤ 2.5×); its floor, the SDK's share of the same two answers: ${ratio(twoFloorS.median, freeS.median)}.`,
    `- URL-elicitation paid call vs the control making the same elicitation round trip: **${ratio(wholeS.median, controlS.median)}** median (target ≤ 1.3×; control accepted ${controlElicitations} of ${WHOLE_CALLS + 200}); its floor, the SDK's share of the same elicitation, completion notice and result: ${ratio(urlFloorS.median, controlS.median)} the control.`,
    `- Provider status reads during the cache-hit calls: ${hitReads} (the confirmed status comes from the store).`,
    `- Store operations per cache-hit paid call: ${storeOps}.`,
    `- Every call ran its tool exactly once: ${runsOk ? 'yes' : 'NO'}.`,
    '',
    `Where the time goes (V8 CPU profiler, self time by part of the code, ${profiled} more calls of each kind):`,
    '',
    table(
      ['part', 'cache-hit paid calls', 'free calls'],
      shares.map(({ part, percent }) => [
        part,
        `${percent.toFixed(1)}%`,
        `${(freeShares.find((f) => f.part === part)?.percent ?? 0).toFixed(1)}%`,
      ]),
    ),
  ].join('\n');

  return {
    title: 'Router overhead',
    command: 'node --import tsx bench/overhead.ts',
    markdown,
    metrics: {
      freeMedianUs: freeS.median * 1000,
      freeP99Us: freeS.p99 * 1000,
      freeWithPaidMetaMedianUs: freeMetaS.median * 1000,
      paidMedianUs: paidS.median * 1000,
      paidP99Us: paidS.p99 * 1000,
      ratioMedian: paidS.median / freeS.median,
      addedMedianUs: addedMedian * 1000,
      wholeUrlMedianUs: wholeS.median * 1000,
      urlControlMedianUs: controlS.median * 1000,
      urlVsControl: wholeS.median / controlS.median,
      twoStepVsFree: twoS.median / freeS.median,
      twoStepFloorVsFree: twoFloorS.median / freeS.median,
      urlFloorVsControl: urlFloorS.median / controlS.median,
      wholeUrlResidentMedianUs: residentS.median * 1000,
      wholeTwoStepMedianUs: twoS.median * 1000,
      storeOps,
      runsOk,
    },
  };
}

runIfMain(import.meta.url, overhead);
