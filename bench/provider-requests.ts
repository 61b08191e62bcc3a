// Provider requests per paid call, per flow, counted at the sandbox stand-ins; and the status-read
// rate of many pending payments under Walleot's limit. Run: node --import tsx bench/provider-requests.ts
import type { ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import type { PaymentStore } from '../src/index.js';
import { WalleotProvider } from '../src/providers/walleot/provider.js';
import type { RecordedRequest } from '../src/sandbox/harness.js';
import { startSandbox, startWalleotSandbox } from '../src/sandbox.js';
import { payAt, paymentOf } from '../test/support/paid-server.js';
import { intentIdFromPayUrl, lateServer, until } from './support/http.js';
import { benchSubject, callTool, callToolAs, quietLogger } from './support/mcp.js';
import { type BenchSection, runIfMain, table } from './support/section.js';
import { sleep } from './support/stats.js';
import { benchClient, benchServer } from './support/world.js';

const PAYMENTS = 10;
/** How long the simulated user takes on the checkout page after the link is shown. */
const USER_DELAY_MS = 2000;
const LOAD_PENDING = Number(process.env['BENCH_LOAD_PENDING'] ?? 500);
const LOAD_WINDOW_MS = 10_000;
/** The steady-state window: long, so the ±1 read at its edges is small next to the rate. */
const STEADY_WINDOW_MS = 20_000;
const BUDGET_SHARE = 0.8;

interface FlowCount {
  flow: string;
  creates: number;
  reads: number;
  other: number;
  payments: number;
  ran: number;
}

const isCreate = (r: RecordedRequest) => r.method === 'POST' && /\/sessions$/.test(r.path);
const isRead = (r: RecordedRequest) => r.method === 'GET' && /\/sessions\/[^/]+$/.test(r.path);

function count(flow: string, entries: readonly RecordedRequest[], payments: number, ran: number): FlowCount {
  const creates = entries.filter(isCreate).length;
  const reads = entries.filter(isRead).length;
  return { flow, creates, reads, other: entries.length - creates - reads, payments, ran };
}

async function sessionOf(store: PaymentStore, intentId: string): Promise<string> {
  const intent = await store.get(intentId);
  const sessionId = intent?.attempts.at(-1)?.paymentId;
  if (sessionId === undefined) throw new Error(`intent ${intentId} has no provider payment`);
  return sessionId;
}

async function perFlow(): Promise<FlowCount[]> {
  const sandbox = await startSandbox();
  const http = await lateServer();
  const counts: FlowCount[] = [];
  try {
    // 1. Two-step: the call returns the link, the user pays, then calls confirm_payment.
    {
      const { walleot } = sandbox.providers({ logger: quietLogger });
      const world = benchServer({ providers: [walleot], flow: 'two_step' });
      const { client, close } = await benchClient(world.server);
      sandbox.reset();
      for (let n = 0; n < PAYMENTS; n++) {
        const payment = paymentOf(await callTool(client, 'work', { n }))!;
        await payAt(payment.payment_url!);
        const done = await callTool(client, 'confirm_payment', { payment_id: payment.payment_id });
        if (done.isError) throw new Error('two-step: confirm_payment did not run the tool');
      }
      counts.push(
        count(
          'two-step + confirm_payment (Walleot)',
          sandbox.walleot.requests.entries,
          PAYMENTS,
          world.log.starts.length,
        ),
      );
      await close();
      await world.router.close();
    }

    // 2. URL elicitation: the call waits (polling) while the user pays USER_DELAY_MS later.
    {
      const { walleot } = sandbox.providers({ logger: quietLogger });
      const world = benchServer({ providers: [walleot] });
      const onElicit = (request: { url?: string }): ElicitResult => {
        setTimeout(() => void payAt(request.url!), USER_DELAY_MS);
        return { action: 'accept' };
      };
      const { client, close } = await benchClient(world.server, 'url', (r) =>
        onElicit(r as { url?: string }),
      );
      sandbox.reset();
      await Promise.all(Array.from({ length: PAYMENTS }, (_, n) => callTool(client, 'work', { n })));
      counts.push(
        count(
          'URL elicitation, polling (Walleot)',
          sandbox.walleot.requests.entries,
          PAYMENTS,
          world.log.starts.length,
        ),
      );
      await close();
      await world.router.close();
    }

    // 3 and 4. Stripe with the hosted pages: woken by the webhook, or by the return page.
    for (const wake of ['webhook', 'return page'] as const) {
      const { stripe } = sandbox.providers({ logger: quietLogger });
      const world = benchServer({
        providers: [stripe],
        publicUrl: http.publicUrl,
        price: { amount: '1.00', currency: 'EUR' },
      });
      http.use(world.router.httpHandler());
      const onElicit = async (request: { url?: string }): Promise<ElicitResult> => {
        const intentId = intentIdFromPayUrl(request.url!);
        const sessionId = await sessionOf(world.store, intentId);
        setTimeout(() => {
          sandbox.stripe.pay(sessionId);
          // The browser follows Stripe's success_url to the return page.
          if (wake === 'return page')
            void fetch(`${http.publicUrl}/return/${intentId}?outcome=success`).then((r) => r.text());
        }, USER_DELAY_MS);
        return { action: 'accept' };
      };
      const { client, close } = await benchClient(world.server, 'url', (r) =>
        onElicit(r as { url?: string }),
      );
      sandbox.reset();
      if (wake === 'webhook') sandbox.stripe.setWebhookTarget({ url: `${http.publicUrl}/webhooks/stripe` });
      await Promise.all(Array.from({ length: PAYMENTS }, (_, n) => callTool(client, 'work', { n })));
      await sandbox.stripe.flushWebhooks();
      counts.push(
        count(
          `URL elicitation, ${wake} (Stripe)`,
          sandbox.stripe.requests.entries,
          PAYMENTS,
          world.log.starts.length,
        ),
      );
      await close();
      await world.router.close();
    }
  } finally {
    await http.close();
    await sandbox.close();
  }
  return counts;
}

interface LoadResult {
  pending: number;
  windowMs: number;
  readsInWindow: number;
  readsPerMinute: number;
  firstWindowReadsPerMinute: number;
  rateLimited: number;
  budgetPerMinute: number;
}

/**
 * LOAD_PENDING unpaid payments waited on at once through one client (URL elicitation, default
 * poll settings, Walleot's real 1,000 status reads/min). Creates are not what is measured, so this
 * stand-in allows more than Walleot's 100 creates/min.
 */
async function pollingUnderLoad(): Promise<LoadResult> {
  const walleotSandbox = await startWalleotSandbox({ limits: { createsPerMinute: 100_000 } });
  // The provider logs every HTTP answer at debug level: count the 429s the stand-in sent.
  let rateLimited = 0;
  const provider = new WalleotProvider({
    apiKey: walleotSandbox.apiKey,
    baseUrl: walleotSandbox.baseUrl,
    logger: {
      ...quietLogger,
      debug: (message, fields) => {
        if (message === 'walleot request' && fields?.['status'] === 429) rateLimited += 1;
      },
    },
  });
  const world = benchServer({
    providers: [provider],
    confirmation: { budgetShare: BUDGET_SHARE },
    // Every call keeps waiting through both windows (the default wait ends after 25 s).
    timeouts: { paymentWaitMs: 120_000, callBudgetMs: 300_000 },
    // Distinct subjects (default limits are on): each pending call is its own payer's.
    subject: benchSubject,
  });
  let accepted = 0;
  const { client, close } = await benchClient(world.server, 'url', () => {
    accepted += 1;
    return { action: 'accept' };
  });
  const reads = () => walleotSandbox.requests.entries.filter(isRead);
  try {
    const started = Date.now();
    const calls = Array.from({ length: LOAD_PENDING }, (_, n) =>
      callToolAs(client, `payer-${n}`, 'work', { n }),
    );
    await until(() => accepted === LOAD_PENDING, 'every link to be delivered', 60_000);
    // Window 1: the first LOAD_WINDOW_MS from the first call, start-up burst included.
    await sleep(Math.max(0, started + LOAD_WINDOW_MS - Date.now()));
    const firstWindow = reads().filter((r) => r.at < started + LOAD_WINDOW_MS).length;
    // Window 2: the next STEADY_WINDOW_MS, every payment waiting: the steady rate.
    const from = Date.now();
    await sleep(STEADY_WINDOW_MS);
    const windowMs = Date.now() - from;
    const inWindow = reads().filter((r) => r.at >= from && r.at < from + windowMs).length;
    await world.router.close(); // ends every wait: the calls return their payment-required results
    const results = await Promise.all(calls);
    const stillPending = results.filter((r) => paymentOf(r)?.status === 'pending').length;
    if (stillPending !== LOAD_PENDING)
      throw new Error(`expected ${LOAD_PENDING} pending results, got ${stillPending}`);
    return {
      pending: LOAD_PENDING,
      windowMs,
      readsInWindow: inWindow,
      readsPerMinute: (inWindow / windowMs) * 60_000,
      firstWindowReadsPerMinute: (firstWindow / LOAD_WINDOW_MS) * 60_000,
      rateLimited,
      budgetPerMinute: provider.capabilities.statusReadsPerMinute * BUDGET_SHARE,
    };
  } finally {
    await close();
    await world.router.close();
    await provider.close();
    await walleotSandbox.close();
  }
}

/** At most the budget's rate over the window, plus one read (a token saved just before it started). */
function within(load: LoadResult): boolean {
  return load.readsInWindow <= (load.budgetPerMinute / 60_000) * load.windowMs + 1;
}

export async function providerRequests(): Promise<BenchSection> {
  const flows = await perFlow();
  const load = await pollingUnderLoad();
  const per = (value: number, payments: number) => (value / payments).toFixed(2);
  const markdown = [
    `Requests seen by the sandbox stand-ins (real HTTP, real \`WalleotProvider\` / \`StripeProvider\`), default`,
    `confirmation settings (status cache 1 s, polls at 0.5 s × 1.5 up to 5 s). ${PAYMENTS} payments per flow; in the`,
    `waiting flows the simulated user pays ${USER_DELAY_MS / 1000} s after the link is shown.`,
    '',
    table(
      ['flow', 'payments', 'tool runs', 'creates / payment', 'status reads / payment', 'other requests'],
      flows.map((f) => [
        f.flow,
        f.payments,
        f.ran,
        per(f.creates, f.payments),
        per(f.reads, f.payments),
        f.other,
      ]),
    ),
    '',
    `**Polling under load**: ${load.pending} unpaid Walleot payments waited on at once (URL elicitation,`,
    `Walleot's real 1,000 status reads/min, budgetShare ${BUDGET_SHARE}):`,
    '',
    `- steady window (${(load.windowMs / 1000).toFixed(1)} s, every payment waiting): ${load.readsInWindow} reads → **${Math.round(load.readsPerMinute)} reads/min** against a budget of ${load.budgetPerMinute}/min (${within(load) ? 'within it' : 'OVER it'}, allowing the one read a window's edges can add).`,
    `- first ${LOAD_WINDOW_MS / 1000} s from the first call, start-up burst included: ${Math.round(load.firstWindowReadsPerMinute)} reads/min extrapolated (the token bucket saves up 3 s of reads, so a burst of ~${Math.round((load.budgetPerMinute / 60) * 3)} reads is allowed on top of the rate: at most ~${Math.round((load.budgetPerMinute / 60) * 3 + load.budgetPerMinute)} reads in any minute, under Walleot's 1,000).`,
    `- HTTP 429 answers from the stand-in (which enforces 1,000 reads/min per key): ${load.rateLimited}.`,
    `- each pending payment is therefore read about every ${((load.pending / load.readsPerMinute) * 60).toFixed(0)} s at this load: webhooks or the return page are what make confirmation fast at scale.`,
  ].join('\n');
  const metrics: Record<string, number | string | boolean> = {
    loadReadsPerMinute: load.readsPerMinute,
    loadFirstWindowReadsPerMinute: load.firstWindowReadsPerMinute,
    loadBudgetPerMinute: load.budgetPerMinute,
    loadWithinBudget: within(load),
    loadRateLimited: load.rateLimited,
  };
  for (const f of flows) {
    metrics[`${f.flow} creates/payment`] = f.creates / f.payments;
    metrics[`${f.flow} reads/payment`] = f.reads / f.payments;
  }
  return {
    title: 'Provider requests per paid call',
    command: 'node --import tsx bench/provider-requests.ts',
    markdown,
    metrics,
  };
}

runIfMain(import.meta.url, providerRequests);
