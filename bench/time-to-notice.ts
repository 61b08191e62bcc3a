// Time to notice a payment when polling is the only way to learn of it (Walleot pushes nothing),
// under a full read budget: a backlog of unpaid payments keeps the budget's queue full, and
// payments are made either right after their link was accepted or after waiting in the backlog.
// Run: node --import tsx bench/time-to-notice.ts
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { AGE_LIMIT_MS } from '../src/engine/confirmation/rate-budget.js';
import { memoryStore, PayRouter } from '../src/index.js';
import { ZeroLatencyProvider } from '../test/support/zero-latency-provider.js';
import { until } from './support/http.js';
import { benchSubject, callToolAs, quietLogger } from './support/mcp.js';
import { type BenchSection, runIfMain, table } from './support/section.js';
import { sleep, summarize } from './support/stats.js';
import { benchClient } from './support/world.js';

const BACKLOG = Number(process.env['BENCH_NOTICE_BACKLOG'] ?? 1000);
const READS_PER_MINUTE = 1000; // Walleot's published limit
const BUDGET_SHARE = 0.8; // the default
const FRESH = 20;
const AGED = 20;
const seconds = (v: number) => `${(v / 1000).toFixed(1)} s`;

export async function timeToNotice(): Promise<BenchSection> {
  const provider = new ZeroLatencyProvider({ mode: 'manual', statusReadsPerMinute: READS_PER_MINUTE });
  const server = new McpServer({ name: 'bench', version: '1.0.0' });
  const router = new PayRouter({
    providers: [provider],
    store: memoryStore(),
    logger: quietLogger,
    timeouts: { paymentWaitMs: 300_000, callBudgetMs: 600_000 },
    // Each call its own payer (default limits on).
    subject: benchSubject,
  });
  // When each payment's tool started: when the router noticed it was paid.
  const ranAt = new Map<string, number>();
  router.install(server).registerTool(
    'work',
    {
      description: 'Work (paid)',
      inputSchema: { n: z.number() },
      price: { amount: '0.05', currency: 'USD' },
    },
    async ({ n }, extra) => {
      ranAt.set(extra.payment.paymentId, performance.now());
      return { content: [{ type: 'text', text: `done ${n}` }] };
    },
  );
  // Every accepted link, in order: the intent (from the elicitation id) and the provider payment
  // (the link is the provider's checkout URL here, ending with its payment id).
  const links: Array<{ intentId: string; providerPaymentId: string }> = [];
  const { client, close } = await benchClient(server, 'url', (request) => {
    const url = 'url' in request ? String(request.url) : '';
    const elicitationId = 'elicitationId' in request ? String(request.elicitationId) : '';
    links.push({
      intentId: elicitationId.slice(0, elicitationId.lastIndexOf('.')),
      providerPaymentId: url.slice(url.lastIndexOf('/') + 1),
    });
    return { action: 'accept' };
  });

  const calls: Array<Promise<unknown>> = [];
  for (let n = 0; n < BACKLOG; n++) calls.push(callToolAs(client, `payer-${n}`, 'work', { n }, 900_000));
  await until(() => links.length === BACKLOG, 'the backlog to be waiting', 300_000);
  // A backlog made in the last minute is itself "just made": its reads rank with new ones. Let it
  // age past that first, as a server's standing backlog has.
  await sleep(AGE_LIMIT_MS + 5_000);
  const backlog = links.slice();
  const paidAt = new Map<string, { at: number; kind: 'fresh' | 'aged' }>();

  // A person who pays at once: a new call, paid within a second of its link being accepted.
  for (let i = 0; i < FRESH; i++) {
    const before = links.length;
    calls.push(callToolAs(client, `fresh-${i}`, 'work', { n: BACKLOG + i }, 900_000));
    await until(() => links.length > before, 'the link to be accepted', 60_000);
    const link = links[before]!;
    await sleep(Math.random() * 1_000);
    provider.pay(link.providerPaymentId);
    paidAt.set(link.intentId, { at: performance.now(), kind: 'fresh' });
    await sleep(250);
  }
  // A person who comes back later: a payment that has waited in the backlog all along.
  for (let i = 0; i < AGED; i++) {
    const link = backlog[i * Math.floor(BACKLOG / AGED)]!;
    provider.pay(link.providerPaymentId);
    paidAt.set(link.intentId, { at: performance.now(), kind: 'aged' });
    await sleep(250);
  }
  await until(() => [...paidAt.keys()].every((id) => ranAt.has(id)), 'every paid call to run', 300_000);
  const noticed = (kind: 'fresh' | 'aged') =>
    summarize([...paidAt].filter(([, p]) => p.kind === kind).map(([id, p]) => ranAt.get(id)! - p.at));
  const fresh = noticed('fresh');
  const aged = noticed('aged');
  const ranTwice = ranAt.size !== paidAt.size;
  await router.close(); // ends every wait
  await Promise.all(calls);
  await close();

  const budgetPerMinute = READS_PER_MINUTE * BUDGET_SHARE;
  const roundRobinMs = (BACKLOG / budgetPerMinute) * 60_000;
  const markdown = [
    `${BACKLOG.toLocaleString('en')} unpaid payments wait at once (URL elicitation, each its own payer, an in-process`,
    `provider advertising Walleot's ${READS_PER_MINUTE.toLocaleString('en')} status reads/min, budgetShare ${BUDGET_SHARE}, default polling),`,
    `so the read budget's queue is always full, and left to wait ${seconds(AGE_LIMIT_MS + 5_000)} (a standing backlog). Then payments are made, about one every 250 ms: first`,
    `${FRESH} new ones, each paid within 1 s of its link being accepted, then ${AGED} of the backlog, paid`,
    'after waiting there. Time to notice: from the payment to the tool handler starting.',
    '',
    table(
      ['paid', 'n', 'median', 'p95', 'max'],
      [
        [
          'right after its link was accepted',
          fresh.n,
          seconds(fresh.median),
          seconds(fresh.p95),
          seconds(fresh.max),
        ],
        ['after waiting in the backlog', aged.n, seconds(aged.median), seconds(aged.p95), seconds(aged.max)],
      ],
    ),
    '',
    `- Round robin over the backlog reads each payment once every ${seconds(roundRobinMs)} (${BACKLOG} payments at ${budgetPerMinute} reads/min): ${seconds(roundRobinMs / 2)} to notice on average, whenever it was paid.`,
    `- Paid right after its link was accepted: noticed in **${seconds(fresh.median)}** (median), its reads going ahead of the backlog's.`,
    `- Paid after waiting in the backlog: median ${seconds(aged.median)}, max ${seconds(aged.max)} (read in queue order; a read passed over for ${seconds(AGE_LIMIT_MS)} gets every other token, so a backlog bigger than a minute of budget still moves).`,
    `- Every paid call ran once, none unpaid: ${ranTwice ? 'NO' : 'yes'}.`,
  ].join('\n');
  return {
    title: 'Time to notice a payment under a full read budget',
    command: 'node --import tsx bench/time-to-notice.ts',
    markdown,
    metrics: { freshMedianMs: fresh.median, agedMedianMs: aged.median, roundRobinMeanMs: roundRobinMs / 2 },
  };
}

runIfMain(import.meta.url, timeToNotice);
