import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, vi } from 'vitest';
import { z } from 'zod';
import { ConfigError, PayRouter } from '../src/index.js';
import { it } from './support/fixture.js';
import { payAt, paymentOf, textOf } from './support/paid-server.js';

const call = async (
  client: { callTool: (...a: never[]) => Promise<unknown> },
  name: string,
  args: Record<string, unknown>,
) =>
  (await (client.callTool as (p: { name: string; arguments: Record<string, unknown> }) => Promise<unknown>)({
    name,
    arguments: args,
  })) as CallToolResult;

describe('a payment unlocks only its own call', () => {
  it('other arguments, another tool, another session: nothing runs on someone else’s payment', async ({
    world,
    connectClient,
  }) => {
    const { server, router } = world.makeServer();
    const a = await connectClient(server, { elicitation: 'none' });
    const paid = paymentOf(await call(a.client, 'process_data', { data: 'mine' }))!;
    await payAt(paid.payment_url!);

    // Same tool, other arguments: a new payment, the paid one is not used.
    const other = await call(a.client, 'process_data', { data: 'theirs' });
    expect(paymentOf(other)?.payment_id).not.toBe(paid.payment_id);
    expect(paymentOf(other)?.status).toBe('pending');
    expect(world.runsOf('process_data')).toBe(0);

    // Another connection presenting an anonymous payer's payment id redeems it (the id is a bearer
    // capability): it still runs only its own bound call, once, and a forged id gets nothing.
    const server2 = new McpServer({ name: 'paid-tools', version: '1.0.0' });
    router.install(server2);
    server2.registerTool(
      'process_data',
      { description: 'x', inputSchema: { data: z.string() }, price: { amount: 0.25, currency: 'USD' } },
      async ({ data }) => {
        world.runs.push({ tool: 'process_data', args: { data }, hasSignal: true });
        return { content: [{ type: 'text', text: `stolen ${data}` }] };
      },
    );
    const b = await connectClient(server2, { elicitation: 'none' });
    const forged = await call(b.client, 'confirm_payment', { payment_id: 'pay_AAAAAAAAAAAAAAAAAAAAAAAA' });
    expect(forged.isError).toBe(true);
    expect(textOf(forged)).toContain('Unknown payment_id "pay_AAAAAAAAAAAAAAAAAAAAAAAA"');
    expect(world.runsOf('process_data')).toBe(0);
    const redeemed = await call(b.client, 'confirm_payment', { payment_id: paid.payment_id });
    expect(textOf(redeemed)).toBe('stolen mine');
    expect(world.runs.filter((r) => r.tool === 'process_data').map((r) => r.args)).toEqual([
      { data: 'mine' },
    ]);

    // The payer who started it gets the same stored result; the tool does not run again.
    const mine = await call(a.client, 'confirm_payment', { payment_id: paid.payment_id });
    expect(textOf(mine)).toBe('stolen mine');
    expect(world.runsOf('process_data')).toBe(1);
    await a.close();
    await b.close();
  });

  it('a price change makes a new payment: the old one does not pay for the new price', async ({
    world,
    connectClient,
  }) => {
    let price = '0.25';
    const { server } = world.makeServer();
    server.registerTool(
      'dynamic',
      {
        description: 'Dynamic',
        inputSchema: { words: z.number().int() },
        price: ({ words }) => ({ amount: words === 1 ? price : '0.75', currency: 'USD' }),
      },
      async ({ words }) => {
        world.runs.push({ tool: 'dynamic', args: { words }, hasSignal: true });
        return { content: [{ type: 'text', text: `dynamic ${words}` }] };
      },
    );
    const { client } = await connectClient(server, { elicitation: 'none' });
    const first = paymentOf(await call(client, 'dynamic', { words: 1 }))!;
    expect(first.amount).toBe('0.25');
    await payAt(first.payment_url!);
    price = '0.30';
    const repriced = paymentOf(await call(client, 'dynamic', { words: 1 }))!;
    expect(repriced.amount).toBe('0.30');
    expect(repriced.payment_id).not.toBe(first.payment_id);
    expect(world.runsOf('dynamic')).toBe(0);
    const big = paymentOf(await call(client, 'dynamic', { words: 3 }))!;
    expect(big.amount).toBe('0.75');
  });

  it('one user (authInfo sub) can pay on one connection and confirm on another', async ({
    world,
    connectClient,
  }) => {
    const { server, router } = world.makeServer();
    const authInfo = { token: 't', clientId: 'some-client', scopes: [], extra: { sub: 'alice' } };
    const a = await connectClient(server, { elicitation: 'none', authInfo });
    const payment = paymentOf(await call(a.client, 'process_data', { data: 'shared' }))!;
    await payAt(payment.payment_url!);
    const server2 = new McpServer({ name: 'paid-tools', version: '1.0.0' });
    router.install(server2);
    server2.registerTool(
      'process_data',
      { description: 'x', inputSchema: { data: z.string() }, price: { amount: 0.25, currency: 'USD' } },
      async ({ data }, extra) => {
        world.runs.push({
          tool: 'process_data',
          args: { data },
          hasSignal: extra.signal instanceof AbortSignal,
          authSub: extra.authInfo?.extra?.['sub'],
        });
        return { content: [{ type: 'text', text: `Processed: ${data}` }] };
      },
    );
    const b = await connectClient(server2, { elicitation: 'none', authInfo });
    const done = await call(b.client, 'confirm_payment', { payment_id: payment.payment_id });
    expect(textOf(done)).toBe('Processed: shared');
    expect(world.runs[0]).toMatchObject({ authSub: 'alice', hasSignal: true });

    const bob = await connectClient(server2, {
      elicitation: 'none',
      authInfo: { ...authInfo, extra: { sub: 'bob' } },
    }).catch(() => undefined);
    expect(bob).toBeUndefined(); // an McpServer serves one connection: the SDK refuses a second connect
    await a.close();
    await b.close();
  });
});

describe('exactly once', () => {
  it('50 concurrent confirm_payment calls for one paid intent run the handler once and all get its result', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    let running = 0;
    let maxRunning = 0;
    server.registerTool(
      'slow',
      { description: 'Slow', inputSchema: { x: z.number() }, price: { amount: '0.05', currency: 'USD' } },
      async ({ x }) => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        world.runs.push({ tool: 'slow', args: { x }, hasSignal: true });
        await new Promise((r) => setTimeout(r, 150));
        running -= 1;
        return { content: [{ type: 'text', text: `slow ${x}` }] };
      },
    );
    const { client } = await connectClient(server, { elicitation: 'none' });
    const payment = paymentOf(await call(client, 'slow', { x: 7 }))!;
    await payAt(payment.payment_url!);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => call(client, 'confirm_payment', { payment_id: payment.payment_id })),
    );
    expect(results.map(textOf)).toEqual(Array(50).fill('slow 7'));
    expect(world.runsOf('slow')).toBe(1);
    expect(maxRunning).toBe(1);
    const reads = world.sandbox.walleot.requests.entries.filter((r) => r.method === 'GET').length;
    expect(reads).toBeLessThanOrEqual(3);
  });

  it('a tool that throws keeps the payment for a retry of the same call; the retry runs it', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    let fail = true;
    server.registerTool(
      'flaky',
      { description: 'Flaky', inputSchema: { x: z.number() }, price: { amount: '0.05', currency: 'USD' } },
      async ({ x }) => {
        world.runs.push({ tool: 'flaky', args: { x }, hasSignal: true });
        if (fail) throw new Error('upstream down');
        return { content: [{ type: 'text', text: `ok ${x}` }] };
      },
    );
    const { client } = await connectClient(server, { elicitation: 'none' });
    const payment = paymentOf(await call(client, 'flaky', { x: 1 }))!;
    await payAt(payment.payment_url!);
    const failed = await call(client, 'confirm_payment', { payment_id: payment.payment_id });
    expect(failed.isError).toBe(true);
    expect(textOf(failed)).toContain('upstream down');
    expect(textOf(failed)).toContain('is kept');
    fail = false;
    const retried = await call(client, 'flaky', { x: 1 });
    expect(textOf(retried)).toBe('ok 1');
    expect(world.runsOf('flaky')).toBe(2);
    expect(world.sandbox.walleot.requests.entries.filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('with onToolError "refund", a failing tool refunds the card payment', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer({ onToolError: 'refund' });
    server.registerTool(
      'broken',
      { description: 'Broken', price: { amount: 1, currency: 'EUR' } },
      async () => {
        throw new Error('always fails');
      },
    );
    const { client } = await connectClient(server, { elicitation: 'none' });
    const payment = paymentOf(await call(client, 'broken', {}))!;
    expect(payment.provider).toBe('stripe');
    await payAt(payment.payment_url!);
    const result = await call(client, 'confirm_payment', { payment_id: payment.payment_id });
    expect(textOf(result)).toContain('refunded');
    expect(paymentOf(result)?.status).toBe('refunded');
    expect(world.sandbox.stripe.requests.entries.filter((r) => r.path === '/v1/refunds')).toHaveLength(1);
  });

  it('a client dropping mid-call loses neither the payment nor, once paid, the result', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    let release: () => void = () => {};
    server.registerTool(
      'long',
      { description: 'Long', inputSchema: { x: z.number() }, price: { amount: '0.05', currency: 'USD' } },
      async ({ x }) => {
        world.runs.push({ tool: 'long', args: { x }, hasSignal: true });
        await new Promise<void>((r) => {
          release = r;
        });
        return { content: [{ type: 'text', text: `long ${x}` }] };
      },
    );
    let payUrl = '';
    const { client } = await connectClient(server, {
      elicitation: 'url',
      onElicit: (request) => {
        if (request.mode === 'url') payUrl = request.url;
        return { action: 'accept' };
      },
    });
    // 1. Abort while the server waits for the payment.
    const waiting = new AbortController();
    const first = client.callTool({ name: 'long', arguments: { x: 1 } }, undefined, {
      signal: waiting.signal,
    });
    await vitestWaitFor(() => payUrl !== '');
    waiting.abort();
    await expect(first).rejects.toThrow();
    await payAt(payUrl);

    // 2. Abort while the paid tool runs: the result is kept.
    const running = new AbortController();
    const second = client.callTool({ name: 'long', arguments: { x: 1 } }, undefined, {
      signal: running.signal,
    });
    await vitestWaitFor(() => world.runsOf('long') === 1);
    running.abort();
    await expect(second).rejects.toThrow();
    release();
    // 3. The retry returns the stored result; the tool does not run again and nothing is charged again.
    await vitestWaitFor(async () => {
      const third = await call(client, 'long', { x: 1 });
      return textOf(third) === 'long 1';
    });
    expect(world.runsOf('long')).toBe(1);
    expect(world.sandbox.walleot.requests.entries.filter((r) => r.method === 'POST')).toHaveLength(1);
  });
});

describe('registration and configuration', () => {
  it('misconfiguration fails at registration with a message naming the tool and the fix', ({ world }) => {
    const { server } = world.makeServer();
    const register = (name: string, config: Record<string, unknown>) => () =>
      server.registerTool(name, { description: 'd', ...config } as never, async () => ({ content: [] }));
    expect(register('bad_amount', { price: { amount: 1.005, currency: 'USD' } })).toThrow(
      /bad_amount.*decimal places/,
    );
    expect(register('zero', { price: { amount: 0, currency: 'USD' } })).toThrow(ConfigError);
    expect(register('unknown_currency', { price: { amount: 1, currency: 'XYZ' } })).toThrow(
      /unknown_currency.*Unknown currency/,
    );
    expect(register('sub_cent', { price: { amount: '0.001', currency: 'USD' } })).toThrow(/sub_cent/);
    expect(register('nobody', { price: { amount: '0.10', currency: 'EUR' } })).toThrow(
      /nobody.*no configured provider/,
    );
    expect(
      register('bad_provider', { price: { amount: 1, currency: 'USD' }, providers: ['paypal'] }),
    ).toThrow(/bad_provider.*unknown provider "paypal"/);
    expect(
      register('override_excludes', { price: { amount: '0.10', currency: 'USD' }, providers: ['stripe'] }),
    ).toThrow(/override_excludes/);
    expect(() => new PayRouter(new McpServer({ name: 'x', version: '1' }), { providers: [] })).toThrow(
      ConfigError,
    );
    expect(
      () => new PayRouter(new McpServer({ name: 'x', version: '1' }), { providers: { paypal: {} } as never }),
    ).toThrow(/Unknown provider "paypal"/);
    expect(
      () =>
        new PayRouter(new McpServer({ name: 'x', version: '1' }), { providers: { walleot: { apiKey: '' } } }),
    ).toThrow(/apiKey/);
  });

  it('shows the price in the tool’s _meta and leaves free tools untouched', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    server.registerTool(
      'meta_priced',
      { description: 'PayMCP style', _meta: { price: { amount: 2, currency: 'USD' } } },
      async () => ({ content: [{ type: 'text', text: 'meta ok' }] }),
    );
    const { client } = await connectClient(server, { elicitation: 'none' });
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect(byName.get('process_data')?._meta?.['price']).toEqual({
      amount: '0.25',
      currency: 'USD',
      minor: 25,
    });
    expect(byName.get('meta_priced')?._meta?.['price']).toEqual({
      amount: '2.00',
      currency: 'USD',
      minor: 200,
    });
    expect(byName.get('confirm_payment')?.description).toBeTruthy();
    expect(byName.get('free_echo')?._meta).toBeUndefined();
    const free = await call(client, 'free_echo', { text: 'hi' });
    expect(textOf(free)).toBe('hi');
    const metaPriced = await call(client, 'meta_priced', {});
    expect(paymentOf(metaPriced)?.amount).toBe('2.00');
  });

  it('the typed router.registerTool and outputSchema tools: no foreign structuredContent on payment results', async ({
    world,
    connectClient,
  }) => {
    const { server, router } = world.makeServer();
    router.registerTool(
      'typed',
      {
        description: 'Typed',
        inputSchema: { q: z.string() },
        outputSchema: { answer: z.string() },
        price: { amount: '1.00', currency: 'USD' },
      },
      async ({ q }) => ({
        content: [{ type: 'text', text: q }],
        structuredContent: { answer: q.toUpperCase() },
      }),
    );
    const { client } = await connectClient(server, { elicitation: 'none' });
    await client.listTools();
    const pending = await call(client, 'typed', { q: 'abc' });
    expect(pending.structuredContent).toBeUndefined();
    const payment = paymentOf(pending)!;
    await payAt(payment.payment_url!);
    const done = await call(client, 'typed', { q: 'abc' });
    expect(done.structuredContent).toEqual({ answer: 'ABC' });
  });

  it('hooks: beforeCharge can refuse (nothing charged), the others see the payment lifecycle', async ({
    world,
    connectClient,
  }) => {
    const events: string[] = [];
    const { server } = world.makeServer({
      hooks: {
        beforeCharge: ({ args }) =>
          (args as { data?: string }).data === 'too much'
            ? { allow: false, reason: 'daily spending cap reached' }
            : true,
        onPaymentCreated: ({ providerId }) => void events.push(`created:${providerId}`),
        onPaid: ({ tool }) => void events.push(`paid:${tool}`),
        onToolRun: ({ ok }) => void events.push(`ran:${ok}`),
      },
    });
    const { client } = await connectClient(server, { elicitation: 'none' });
    const refused = await call(client, 'process_data', { data: 'too much' });
    expect(textOf(refused)).toContain('daily spending cap reached');
    expect(world.sandbox.walleot.requests.entries).toHaveLength(0);
    const payment = paymentOf(await call(client, 'process_data', { data: 'fine' }))!;
    await payAt(payment.payment_url!);
    await call(client, 'confirm_payment', { payment_id: payment.payment_id });
    expect(events).toEqual(['created:walleot', 'paid:process_data', 'ran:true']);
  });

  it('explain() shows the routing decision without side effects', async ({ world }) => {
    const { router } = world.makeServer();
    const decision = await router.explain('report', { topic: 'x' });
    expect(decision.eligible.map((e) => e.providerId)).toEqual(['walleot', 'stripe']);
    const yen = await router.explain('status_now');
    expect(yen.excluded[0]).toMatchObject({ providerId: 'walleot' });
    expect(world.sandbox.walleot.requests.entries).toHaveLength(0);
  });
});

describe('waiting', () => {
  it('sends progress while waiting for a URL-mode payment when the client asked for it', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client } = await connectClient(server, {
      elicitation: 'form+url',
      onElicit: (request) => {
        if (request.mode === 'url') {
          setTimeout(() => void payAt(request.url), 300);
          return { action: 'accept' };
        }
        return { action: 'accept', content: { method: 'walleot' } };
      },
    });
    const progress: string[] = [];
    const result = (await client.callTool({ name: 'report', arguments: { topic: 'p' } }, undefined, {
      onprogress: (p) => void progress.push(p.message ?? ''),
    })) as CallToolResult;
    expect(textOf(result)).toBe('Report on p (1 pages)');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress[0]).toContain('Waiting for the payment');
  });

  it('every wait in a call fits the call budget: a slow choice leaves less time to wait for payment', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer({
      timeouts: { paymentWaitMs: 60_000, choiceMs: 60_000, callBudgetMs: 600 },
    });
    let urlElicited = false;
    const { client } = await connectClient(server, {
      elicitation: 'form+url',
      onElicit: async (request) => {
        if (request.mode === 'url') {
          urlElicited = true;
          return { action: 'accept' };
        }
        await new Promise((r) => setTimeout(r, 300));
        return { action: 'accept', content: { method: 'walleot' } };
      },
    });
    // With 60 s steps this call would wait a minute; the 600 ms budget makes it answer pending instead.
    const result = await call(client, 'report', { topic: 'budget' });
    expect(urlElicited).toBe(true);
    expect(paymentOf(result)?.status).toBe('pending');
    expect(world.runsOf('report')).toBe(0);
  });

  it('a wait that runs out returns the pending payment; the next call resumes it', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer({ timeouts: { paymentWaitMs: 200, choiceMs: 2000 } });
    let url = '';
    const { client } = await connectClient(server, {
      elicitation: 'url',
      onElicit: (request) => {
        if (request.mode === 'url') url = request.url;
        return { action: 'accept' };
      },
    });
    const pending = await call(client, 'process_data', { data: 'later' });
    expect(paymentOf(pending)?.status).toBe('pending');
    await payAt(url);
    const done = await call(client, 'process_data', { data: 'later' });
    expect(textOf(done)).toBe('Processed: later');
    expect(world.sandbox.walleot.requests.entries.filter((r) => r.method === 'POST')).toHaveLength(1);
  });
});

async function vitestWaitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  await vi.waitFor(
    async () => {
      if (!(await predicate())) throw new Error('condition not met in time');
    },
    { timeout: timeoutMs, interval: 25 },
  );
}
