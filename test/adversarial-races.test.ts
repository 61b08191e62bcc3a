// Races found while attacking the router: each test pins one down deterministically, over the real
// parts (sandbox stand-ins over HTTP, the stripe SDK, router.httpHandler() on 127.0.0.1).
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect } from 'vitest';
import { z } from 'zod';
import { it } from './support/fixture.js';
import { type HttpWorld, storeOf, until } from './support/http-world.js';
import { paymentOf, textOf } from './support/paid-server.js';

/** A tool only Stripe can take (Walleot has no EUR), one distinct payment per `n`. */
function registerCardOnly(world: HttpWorld, server: McpServer) {
  server.registerTool(
    'card_only',
    { description: 'Card only', inputSchema: { n: z.number() }, price: { amount: '1.00', currency: 'EUR' } },
    async ({ n }) => {
      world.runs.push({ tool: 'card_only', args: { n }, hasSignal: true });
      return { content: [{ type: 'text', text: `card ${n}` }] };
    },
  );
}

const stripeReads = (world: HttpWorld, sessionId: string) =>
  world.sandbox.stripe.requests.entries.filter(
    (r) => r.method === 'GET' && r.path.endsWith(`/checkout/sessions/${sessionId}`),
  ).length;

const returnPage = async (world: HttpWorld, intentId: string) => {
  const response = await fetch(`${world.publicUrl}/return/${intentId}?outcome=success`);
  return { status: response.status, html: await response.text() };
};

describe('concurrent duplicates of one call', () => {
  it('two identical calls sent at once share one intent and one provider payment', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client } = await connectClient(server, { elicitation: 'none' });
    const call = () =>
      client.callTool({ name: 'process_data', arguments: { data: 'twice' } }) as Promise<CallToolResult>;
    const [first, second] = await Promise.all([call(), call()]);
    const creates = world.sandbox.walleot.requests.entries.filter((r) => r.method === 'POST');
    // Today each call inserts its own intent and creates its own Walleot session: two links for one
    // call, and a user who pays both is charged twice.
    expect(creates).toHaveLength(1);
    expect(paymentOf(second)?.payment_id).toBe(paymentOf(first)?.payment_id);
  });
});

describe('the return page while polls wait for the read budget', () => {
  it('reads the provider although a waiter is queued for a token, and wakes the waiting call', async ({
    httpWorld: world,
    connectClient,
  }) => {
    // Stripe allows 1,200 reads/min; a 5% share is 60/min with a burst of 3: the first polls of
    // three calls take the three tokens, the fourth call's first poll queues for about a second.
    const { server, router } = world.makeHttpServer({
      timeouts: { choiceMs: 5000, paymentWaitMs: 8000 },
      // Waits poll at once even though the return page could tell them: that fills the budget queue.
      confirmation: {
        budgetShare: 0.05,
        pendingTtlMs: 50,
        poll: { initialMs: 60_000, maxMs: 60_000 },
        pushed: () => false,
      },
    });
    registerCardOnly(world, server);
    const { client } = await connectClient(server, {
      elicitation: 'url',
      onElicit: () => ({ action: 'accept' }),
    });
    const calls = [1, 2, 3, 4].map(
      (n) => client.callTool({ name: 'card_only', arguments: { n } }) as Promise<CallToolResult>,
    );
    await until(() => world.sandbox.stripe.listSessions().length === 4, 'four checkout sessions');
    const sessions = world.sandbox.stripe.listSessions();
    await until(
      () => sessions.filter((s) => stripeReads(world, s.id) === 1).length === 3,
      'three first polls',
    );
    const read = sessions.find((s) => stripeReads(world, s.id) === 1)!;
    const intentId = read.client_reference_id!;
    expect(sessions.filter((s) => stripeReads(world, s.id) === 0)).toHaveLength(1); // the fourth poll is queued

    world.sandbox.stripe.pay(read.id);
    const page = await returnPage(world, intentId);
    // Today: the read is refused by the budget (tryTake fails while anyone is queued), the page
    // shows the stored "pending" and nobody is woken; the call waits for the next poll.
    expect(page.html).toContain('data-status="paid"');
    const paid = (await storeOf(router).get(intentId))!;
    expect(paid.status).toBe('paid');
    const n = (JSON.parse(paid.argsJson) as { n: number }).n;
    expect(textOf(await calls[n - 1]!)).toBe(`card ${n}`);
    await router.close(); // ends the other calls' waits
    const others = await Promise.all(calls.filter((_, i) => i !== n - 1));
    expect(others.map((r) => paymentOf(r)?.status)).toEqual(['pending', 'pending', 'pending']);
    expect(world.runs).toHaveLength(1);
  });
});

describe('a fresh read asked for after the payment', () => {
  it('is not answered by a read that was already in flight before the user paid', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { server, router } = world.makeHttpServer({
      timeouts: { choiceMs: 5000, paymentWaitMs: 4000 },
      confirmation: { pendingTtlMs: 50, poll: { initialMs: 60_000, maxMs: 60_000 } },
    });
    registerCardOnly(world, server);
    const { client } = await connectClient(server, { elicitation: 'none' });
    const pending = paymentOf(
      (await client.callTool({ name: 'card_only', arguments: { n: 3 } })) as CallToolResult,
    )!;
    const intent = (await storeOf(router).get(pending.payment_id))!;
    const sessionId = intent.attempts[0]!.paymentId;
    // The next read of this session is slow: the stand-in answers "open/unpaid" 800 ms later.
    world.sandbox.stripe.fail({
      status: 200,
      body: world.sandbox.stripe.getSession(sessionId),
      delayMs: 800,
      pathIncludes: sessionId,
    });
    const confirming = client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: pending.payment_id },
    }) as Promise<CallToolResult>;
    await until(() => stripeReads(world, sessionId) === 1, 'the confirmation’s read to be in flight');

    world.sandbox.stripe.pay(sessionId);
    const page = await returnPage(world, pending.payment_id);
    // Today the return page's `check({ fresh: true })` joins the read in flight (lru-cache fetch
    // coalescing), which started before the payment: it shows "pending" and wakes nobody.
    expect(page.html).toContain('data-status="paid"');
    const done = await confirming;
    expect(textOf(done)).toBe('card 3');
    expect(world.runs).toHaveLength(1);
  });
});
