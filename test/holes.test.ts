// Holes an attacker or a hurried author finds: each test is named after the item it closes.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect } from 'vitest';
import { z } from 'zod';
import { canonicalJson } from '../src/core/canonical-json.js';
import { ConfigError, PayRouter, silentLogger } from '../src/index.js';
import { it } from './support/fixture.js';
import { payAt, paymentOf, textOf } from './support/paid-server.js';

const call = async (
  client: { callTool: (p: { name: string; arguments?: Record<string, unknown> }) => Promise<unknown> },
  name: string,
  args: Record<string, unknown>,
) => (await client.callTool({ name, arguments: args })) as CallToolResult;

describe('item 2: transforming input schemas are applied once', () => {
  it('an in-call run gets exactly what an unpaid call gets; a one-way transform is refused at registration', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer({ flow: 'two_step' });
    const seen: unknown[] = [];
    expect(() =>
      server.registerTool(
        'plus_one',
        {
          inputSchema: { n: z.number().transform((n) => n + 1) },
          price: { amount: '0.25', currency: 'USD' },
        },
        async ({ n }) => ({ content: [{ type: 'text', text: String(n) }] }),
      ),
    ).toThrow(/inputSchema\.n .*one-way transform.*z\.codec/);
    expect(() =>
      server.registerTool(
        'pre',
        {
          inputSchema: { n: z.preprocess((v) => Number(v), z.number()) },
          price: { amount: '0.25', currency: 'USD' },
        },
        async () => ({ content: [] }),
      ),
    ).toThrow(ConfigError);

    // A codec replays: the stored wire form is the client's value, decoded once at run time.
    const cents = z.codec(z.number().int(), z.string(), {
      decode: (c) => `${Math.trunc(c / 100)}.${String(c % 100).padStart(2, '0')}`,
      encode: (s) => Number(s.replace('.', '')),
    });
    server.registerTool(
      'dollars',
      { inputSchema: { cents }, price: { amount: '0.25', currency: 'USD' }, providers: ['walleot'] },
      async ({ cents: value }) => {
        seen.push(value);
        return { content: [{ type: 'text', text: `got ${value}` }] };
      },
    );
    const { client } = await connectClient(server, { elicitation: 'none' });
    const pending = paymentOf(await call(client, 'dollars', { cents: 500 }))!;
    await payAt(pending.payment_url!);
    // Deferred run (confirm_payment): parsed once from the stored wire form.
    const confirmed = await call(client, 'confirm_payment', { payment_id: pending.payment_id });
    expect(textOf(confirmed)).toBe('got 5.00');
    // In-call run of an already-paid identical call is not possible (the result was delivered); a new
    // call is a new purchase, and once paid the same call run in-call gets the SDK's own value.
    const again = paymentOf(await call(client, 'dollars', { cents: 1234 }))!;
    await payAt(again.payment_url!);
    const inCall = await call(client, 'dollars', { cents: 1234 });
    expect(textOf(inCall)).toBe('got 12.34');
    expect(seen).toEqual(['5.00', '12.34']);
  });
});

describe('item 3: a priced tool never runs free by accident', () => {
  it('installing on a server whose tools already exist is an error at install', ({ world }) => {
    const router = new PayRouter({ providers: [world.sandbox.providers().walleot] });
    const early = new McpServer({ name: 'early', version: '1.0.0' });
    early.registerTool('free_first', { description: 'registered before the router' }, async () => ({
      content: [],
    }));
    expect(() => router.install(early)).toThrow(/must come before any server.registerTool/);
    // A server that declares tools on purpose says so.
    const declared = new McpServer({ name: 'declared', version: '1.0.0' }, { capabilities: { tools: {} } });
    expect(() => router.install(declared)).toThrow(ConfigError);
    const installed = router.install(declared, { toolsCapability: true });
    expect(installed).toBe(declared);
    return router.close();
  });
});

describe('item 5: confirm_payment checks the tool as it is now', () => {
  it('a $0.25 payment does not run the $25.00 tool of the same name on another server', async ({
    world,
    connectClient,
  }) => {
    const { server, router } = world.makeServer({ flow: 'two_step' });
    const cheap = router.install(new McpServer({ name: 'cheap', version: '1.0.0' }));
    const dear = router.install(new McpServer({ name: 'dear', version: '1.0.0' }));
    void server;
    let runs = 0;
    const handler = async () => {
      runs += 1;
      return { content: [{ type: 'text' as const, text: 'generated' }] };
    };
    cheap.registerTool(
      'generate',
      { price: { amount: '0.25', currency: 'USD' }, providers: ['walleot'] },
      handler,
    );
    dear.registerTool(
      'generate',
      { price: { amount: '25.00', currency: 'USD' }, providers: ['walleot'] },
      handler,
    );
    const a = await connectClient(cheap, { elicitation: 'none' });
    const b = await connectClient(dear, { elicitation: 'none' });
    const payment = paymentOf(await call(a.client, 'generate', {}))!;
    await payAt(payment.payment_url!);
    const wrong = await call(b.client, 'confirm_payment', { payment_id: payment.payment_id });
    expect(wrong.isError).toBe(true);
    expect(textOf(wrong)).toContain('different call');
    expect(runs).toBe(0);
    expect(textOf(await call(a.client, 'confirm_payment', { payment_id: payment.payment_id }))).toBe(
      'generated',
    );
    expect(runs).toBe(1);
    await a.close();
    await b.close();
  });
});

describe('item 11: canonical arguments keep own __proto__ keys', () => {
  it('two calls that differ only in an own __proto__ key get different bindings', () => {
    const withProto = JSON.parse('{"__proto__": {"admin": true}, "a": 1}') as Record<string, unknown>;
    expect(canonicalJson(withProto)).toBe('{"__proto__":{"admin":true},"a":1}');
    expect(canonicalJson(withProto)).not.toBe(canonicalJson({ a: 1 }));
  });
});

describe('item 14: deeply nested arguments', () => {
  it('20,000-deep arguments get a clear error, not a stack overflow, and nothing is charged', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer({ flow: 'two_step' });
    server.registerTool(
      'deep',
      { inputSchema: { tree: z.unknown() }, price: { amount: '0.25', currency: 'USD' } },
      async () => ({ content: [{ type: 'text', text: 'ran' }] }),
    );
    const { client } = await connectClient(server, { elicitation: 'none' });
    let tree: unknown = 'leaf';
    for (let i = 0; i < 20_000; i++) tree = [tree];
    const result = await call(client, 'deep', { tree });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/deeper than 64 levels.*Nothing was charged/);
    expect(paymentOf(result)).toBeUndefined();
  });
});

describe('item 10: return URLs belong to the stored plan', () => {
  it('an instance with another publicUrl retrying a create sends the same request under the same key', async ({
    world,
    connectClient,
  }) => {
    const { StripeProvider } = await import('../src/providers.js');
    const { memoryStore } = await import('../src/index.js');
    const store = memoryStore();
    const stripe = () =>
      new StripeProvider({
        apiKey: world.sandbox.stripe.apiKey,
        stripe: { ...world.sandbox.stripe.sdkOptions, timeout: 300, maxNetworkRetries: 0 },
      });
    const instance = (publicUrl: string) => {
      const router = new PayRouter({
        providers: [stripe()],
        store,
        publicUrl,
        flow: 'two_step',
        subject: () => 'shared',
        logger: silentLogger,
      });
      const server = router.install(new McpServer({ name: 'plan', version: '1.0.0' }));
      server.registerTool('card', { price: { amount: '1.00', currency: 'USD' } }, async () => ({
        content: [{ type: 'text', text: 'ran' }],
      }));
      return { router, server };
    };
    const a = instance('https://a.example');
    const b = instance('https://b.example');
    const ca = await connectClient(a.server, { elicitation: 'none' });
    const cb = await connectClient(b.server, { elicitation: 'none' });
    // A's create reaches Stripe (its key is taken) but the answer comes too late for A.
    world.sandbox.stripe.fail({ delayMs: 1000, pathIncludes: '/v1/checkout/sessions' });
    const failed = await call(ca.client, 'card', {});
    expect(textOf(failed)).toContain('Nothing was charged');
    // A deliberate sleep: past the fault's 1000 ms delay, so Stripe has answered A's late create.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const retried = await call(cb.client, 'card', {});
    const payment = paymentOf(retried)!;
    expect(payment.provider).toBe('stripe');
    const intent = (await store.get(payment.payment_id))!;
    const session = world.sandbox.stripe.getSession(intent.attempts[0]!.paymentId)!;
    expect(session.success_url).toBe(`https://a.example/return/${payment.payment_id}?outcome=success`);
    await ca.close();
    await cb.close();
    await a.router.close();
    await b.router.close();
  });
});
