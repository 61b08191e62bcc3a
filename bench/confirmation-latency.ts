// Confirmation latency: from the sandbox marking a payment paid to the tool starting, woken by a
// webhook, by the return page, or found by polling. Run: node --import tsx bench/confirmation-latency.ts
import type { ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import type { PaymentStore, PayRouterOptions } from '../src/index.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { paymentOf } from '../test/support/paid-server.js';
import { intentIdFromPayUrl, lateServer } from './support/http.js';
import { callTool, quietLogger } from './support/mcp.js';
import { type BenchSection, runIfMain, table } from './support/section.js';
import { ms, type Summary, summarize } from './support/stats.js';
import { benchClient, benchServer } from './support/world.js';

const PAYMENTS = Number(process.env['BENCH_LATENCY_PAYMENTS'] ?? 50);
/** Payments in flight at once (polling ones share the provider's read budget). */
const CONCURRENCY = 5;
/** Uncounted payments first: the first HTTP connections and JIT make the first few slow. */
const WARMUP = 5;

type Wake = 'webhook' | 'return page' | 'polling';

async function sessionOf(store: PaymentStore, intentId: string): Promise<string> {
  const sessionId = (await store.get(intentId))?.attempts.at(-1)?.paymentId;
  if (sessionId === undefined) throw new Error(`intent ${intentId} has no provider payment`);
  return sessionId;
}

async function measure(sandbox: Sandbox, wake: Wake, http: Awaited<ReturnType<typeof lateServer>>) {
  const publicUrl = http.publicUrl;
  const providers = sandbox.providers({ logger: quietLogger });
  const options: PayRouterOptions & { price?: { amount: string; currency: string } } =
    wake === 'polling'
      ? // Walleot has neither webhooks nor redirects: polling with the default settings is all there is.
        { providers: [providers.walleot] }
      : {
          providers: [providers.stripe],
          publicUrl,
          price: { amount: '1.00', currency: 'EUR' },
          // Polling slowed to once a minute: only the webhook or the return page can confirm in time.
          confirmation: { poll: { initialMs: 60_000, maxMs: 60_000 } },
          // A payment this path failed to confirm shows up as a pending result after 5 s.
          timeouts: { paymentWaitMs: 5000 },
        };
  const world = benchServer(options);
  if (wake !== 'polling') http.use(world.router.httpHandler());
  /** performance.now() at the moment each intent's payment was marked paid. */
  const paidAt = new Map<string, number>();
  const payLater = async (intentId: string, delayMs: number): Promise<void> => {
    const paymentId = await sessionOf(world.store, intentId);
    await new Promise((r) => setTimeout(r, delayMs));
    paidAt.set(intentId, performance.now());
    if (wake === 'polling') {
      sandbox.walleot.setStatus(paymentId, 'paid');
      return;
    }
    sandbox.stripe.pay(paymentId); // raises checkout.session.completed (delivered when a target is set)
    if (wake === 'return page') {
      // The browser follows Stripe's success_url straight away.
      await fetch(`${publicUrl}/return/${intentId}?outcome=success`).then((r) => r.text());
    }
  };
  // Walleot links are the provider's checkout page: find the intent by its payment.
  const intentOf = async (url: string): Promise<string> => {
    if (wake !== 'polling') return intentIdFromPayUrl(url);
    const intent = await world.store.findByPayment('walleot', url.split('/').at(-1)!);
    if (intent === undefined) throw new Error(`no intent for ${url}`);
    return intent.id;
  };
  const payments: Array<Promise<void>> = [];
  const { client, close } = await benchClient(world.server, 'url', (request): ElicitResult => {
    // Polling: pay anywhere in the first 3 s of the wait, so every point of the back-off is hit.
    // Webhook / return page: pay once the call is waiting.
    const delay = wake === 'polling' ? Math.random() * 3000 : 100 + Math.random() * 400;
    payments.push(intentOf((request as { url: string }).url).then((id) => payLater(id, delay)));
    return { action: 'accept' };
  });
  sandbox.reset();
  if (wake === 'webhook') sandbox.stripe.setWebhookTarget({ url: `${publicUrl}/webhooks/stripe` });

  const latencies: number[] = [];
  let missed = 0;
  let next = -WARMUP;
  const worker = async () => {
    for (let n = next++; n < PAYMENTS; n = next++) {
      const result = await callTool(client, 'work', { n });
      const payment = paymentOf(result);
      if (payment === undefined) throw new Error(`${wake}: call ${n}: ${JSON.stringify(result.content)}`);
      if (result.isError) {
        // Still pending when the wait ended: this path did not confirm the payment.
        if (n >= 0) missed += 1;
        continue;
      }
      const started = world.log.starts.find((s) => s.n === n)?.at;
      const paid = paidAt.get(payment.payment_id);
      if (started === undefined || paid === undefined) throw new Error(`${wake}: no timing for call ${n}`);
      if (n >= 0) latencies.push(started - paid);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await Promise.all(payments);
  await sandbox.stripe.flushWebhooks();
  await close();
  await world.router.close();
  return { summary: summarize(latencies), missed };
}

export async function confirmationLatency(): Promise<BenchSection> {
  const sandbox = await startSandbox();
  const http = await lateServer();
  const results: Array<[Wake, Summary, number]> = [];
  try {
    for (const wake of ['webhook', 'return page', 'polling'] as const) {
      const { summary, missed } = await measure(sandbox, wake, http);
      results.push([wake, summary, missed]);
    }
  } finally {
    await http.close();
    await sandbox.close();
  }
  const markdown = [
    `From the moment the stand-in marks the payment paid to the moment the tool's handler starts, in a`,
    `waiting URL-elicitation call. ${PAYMENTS} payments per path, ${CONCURRENCY} at a time. Webhook and return page:`,
    `Stripe stand-in, router.httpHandler() on 127.0.0.1, polling slowed to once a minute so only that path can`,
    `confirm. Polling: Walleot stand-in with the default poll settings (0.5 s × 1.5 up to 5 s, status cache`,
    `1 s), the payment made at a random moment in the first 3 s of the wait. ${WARMUP} uncounted payments first.`,
    `"Not confirmed by this path": the call was still pending when its 5 s wait ended (see the findings: a`,
    `return-page read is skipped whenever the read budget has a queue or no token left).`,
    '',
    table(
      ['woken by', 'confirmed', 'not confirmed by this path', 'p50', 'p95', 'max'],
      results.map(([wake, s, missed]) => [wake, s.n, missed, ms(s.median), ms(s.p95), ms(s.max)]),
    ),
  ].join('\n');
  const metrics: Record<string, number> = {};
  for (const [wake, s, missed] of results) {
    metrics[`${wake} missed`] = missed;
    metrics[`${wake} p50 ms`] = s.median;
    metrics[`${wake} p95 ms`] = s.p95;
  }
  return {
    title: 'Confirmation latency',
    command: 'node --import tsx bench/confirmation-latency.ts',
    markdown,
    metrics,
  };
}

runIfMain(import.meta.url, confirmationLatency);
