// payrouter/mcp-v2 in one process: the v2 Client (protocol 2026-07-28) over Streamable HTTP into
// createMcpHandler, a fresh v2 McpServer per request, the sandbox taking the payments.
import { type CallToolResult, isInputRequiredResult } from '@modelcontextprotocol/client';
import { Client as LegacyClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as LegacyHttpTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  memoryStore,
  PAYMENT_META_KEY,
  type PaymentInfo,
  PayRouter,
  type PayRouterOptions,
  silentLogger,
} from '../src/index.js';
import { installV2, REQUEST_STATE_ERROR_META_KEY } from '../src/mcp-v2.js';
import { startSandbox } from '../src/sandbox.js';
import { textOf } from './support/paid-server.js';
import { connectV2, inProcessFetch, offeredMethods, payAtUrl, userAuth } from './support/v2-world.js';

const KEY = 'test-request-state-key-0123456789abcdef';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.useRealTimers();
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function world(
  options: { auth?: () => ReturnType<typeof userAuth> | undefined; router?: Partial<PayRouterOptions> } = {},
) {
  const sandbox = await startSandbox();
  const providers = sandbox.providers();
  const store = memoryStore();
  const router = new PayRouter({
    providers: [providers.walleot, providers.stripe],
    store,
    logger: silentLogger,
    requestStateKey: KEY,
    timeouts: { choiceMs: 5000, paymentWaitMs: 3000 },
    confirmation: { pendingTtlMs: 50, poll: { initialMs: 20, maxMs: 100 } },
    ...options.router,
  });
  const runs: Array<{ tool: string; args: unknown; paymentId: string; sub: unknown }> = [];
  const handler = createMcpHandler(() => {
    const server = installV2(router, new McpServer({ name: 'v2-paid', version: '1.0.0' }));
    server.registerTool(
      'report',
      {
        description: 'A report',
        inputSchema: z.object({ topic: z.string() }),
        price: { amount: '2.00', currency: 'USD' },
      },
      async ({ topic }, ctx) => {
        runs.push({
          tool: 'report',
          args: { topic },
          paymentId: ctx.payment.paymentId,
          sub: ctx.http?.authInfo?.extra?.['sub'],
        });
        return { content: [{ type: 'text', text: `Report on ${topic}` }] };
      },
    );
    server.registerTool(
      'stripe_only',
      {
        description: 'Card only',
        inputSchema: z.object({ n: z.number() }),
        price: { amount: '1.00', currency: 'USD' },
        providers: ['stripe'],
      },
      async ({ n }, ctx) => {
        runs.push({ tool: 'stripe_only', args: { n }, paymentId: ctx.payment.paymentId, sub: undefined });
        return { content: [{ type: 'text', text: `card ${n}` }] };
      },
    );
    server.registerTool('free', { inputSchema: z.object({ t: z.string() }) }, async ({ t }) => ({
      content: [{ type: 'text', text: t }],
    }));
    return server;
  });
  cleanups.push(async () => {
    await handler.close();
    await router.close();
    await sandbox.close();
  });
  const fetch = inProcessFetch(handler, options.auth);
  return { sandbox, router, store, runs, handler, fetch };
}

const paymentOf = (r: { _meta?: Record<string, unknown> }) =>
  r._meta?.[PAYMENT_META_KEY] as PaymentInfo | undefined;

describe('payrouter/mcp-v2: input-required rounds', () => {
  it('asks the method by form, the link by URL, and runs the tool once after payment', async () => {
    const w = await world();
    const user = await connectV2(w.fetch);
    cleanups.push(user.close);
    expect(user.client.getProtocolEra()).toBe('modern');
    const { tools } = await user.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['confirm_payment', 'free', 'report', 'stripe_only']);

    const result = (await user.client.callTool({
      name: 'report',
      arguments: { topic: 'tides' },
    })) as CallToolResult;
    expect(textOf(result), JSON.stringify(result)).toBe('Report on tides');
    expect(user.asked.map((a) => (a as { mode?: string }).mode ?? 'form')).toEqual(['form', 'url']);
    expect(offeredMethods(user.asked[0]!).sort()).toEqual(['stripe', 'walleot']);
    expect(w.runs).toHaveLength(1);
    expect(paymentOf(result)).toMatchObject({ status: 'paid', amount: '2.00' });
  });

  it('gives a client that declares nothing the payment-required result, then confirm_payment', async () => {
    const w = await world();
    const user = await connectV2(w.fetch, { elicitation: 'none' });
    cleanups.push(user.close);
    const required = (await user.client.callTool({
      name: 'stripe_only',
      arguments: { n: 1 },
    })) as CallToolResult;
    expect(required.isError).toBe(true);
    const payment = paymentOf(required)!;
    expect(payment.payment_url).toBeTruthy();
    // This payer is a stranger to the next request: only the payment id finds the payment again.
    expect(textOf(required)).toContain(`confirm_payment with payment_id "${payment.payment_id}"`);
    expect(textOf(required)).not.toContain('again with the same arguments');
    const { payAt } = await import('./support/paid-server.js');
    await payAt(payment.payment_url!);
    const done = (await user.client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id, method: null },
    })) as CallToolResult;
    expect(textOf(done)).toBe('card 1');
    expect(w.runs).toHaveLength(1);
  });
});

describe('payrouter/mcp-v2: answers and capabilities', () => {
  it('a declined link stops the call: nothing runs, the payment is not left open', async () => {
    const w = await world();
    const user = await connectV2(w.fetch, { onUrl: () => ({ action: 'decline' }) });
    cleanups.push(user.close);
    const result = (await user.client.callTool({
      name: 'stripe_only',
      arguments: { n: 2 },
    })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('You declined the payment');
    expect(w.runs).toHaveLength(0);
    expect(paymentOf(result)?.status).toBe('canceled');
  });

  it('a form-only client chooses by form, then gets the link in the payment-required result', async () => {
    const w = await world();
    const user = await connectV2(w.fetch, { elicitation: 'form' });
    cleanups.push(user.close);
    const required = (await user.client.callTool({
      name: 'report',
      arguments: { topic: 'x' },
    })) as CallToolResult;
    expect(user.asked).toHaveLength(1);
    expect(required.isError).toBe(true);
    const payment = paymentOf(required)!;
    expect(payment.provider).toBe(offeredMethods(user.asked[0]!)[0]);
    await payAtUrl({ mode: 'url', message: '', url: payment.payment_url! } as never);
    const done = (await user.client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id, method: null },
    })) as CallToolResult;
    expect(textOf(done)).toBe('Report on x');
    expect(w.runs).toHaveLength(1);
  });

  it("flow 'two_step' asks nothing, whatever the client declares", async () => {
    const w = await world({ router: { flow: 'two_step' } });
    const user = await connectV2(w.fetch);
    cleanups.push(user.close);
    const required = (await user.client.callTool({
      name: 'stripe_only',
      arguments: { n: 3 },
    })) as CallToolResult;
    expect(user.asked).toHaveLength(0);
    expect(paymentOf(required)?.payment_url).toBeTruthy();
  });

  it('an authenticated payer is its sub: the handler sees it, and the run is bound to it', async () => {
    const w = await world({ auth: () => userAuth('dana') });
    const user = await connectV2(w.fetch);
    cleanups.push(user.close);
    const result = (await user.client.callTool({
      name: 'stripe_only',
      arguments: { n: 4 },
    })) as CallToolResult;
    expect(textOf(result)).toBe('card 4');
    expect(w.runs).toEqual([
      { tool: 'stripe_only', args: { n: 4 }, paymentId: paymentOf(result)!.payment_id, sub: undefined },
    ]);
    const intent = await w.store.get(paymentOf(result)!.payment_id);
    expect(intent?.binding.subject).toBe('user:dana');
  });

  it('refuses a requestState after its time, and one sealed under another key', async () => {
    const w = await world();
    const user = await connectV2(w.fetch, { manual: true });
    cleanups.push(user.close);
    const call = (retry?: { inputResponses: Record<string, unknown>; requestState: string }) =>
      user.client.request(
        { method: 'tools/call', params: { name: 'report', arguments: { topic: 'late' }, ...(retry ?? {}) } },
        { allowInputRequired: true },
      ) as Promise<CallToolResult>;
    const first = await call();
    if (!isInputRequiredResult(first)) throw new Error('expected input_required');
    const answer = { payrouter_method: { action: 'accept', content: { method: 'walleot' } } };

    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 11 * 60 * 1000 });
    const late = await call({ inputResponses: answer, requestState: first.requestState! });
    vi.useRealTimers();
    expect((late._meta?.[REQUEST_STATE_ERROR_META_KEY] as { reason?: string } | undefined)?.reason).toBe(
      'expired',
    );

    // Sealed by a router with another key: not ours.
    const { RequestStateSealer } = await import('../src/mcp-v2/request-state.js');
    const forged = new RequestStateSealer(
      new TextEncoder().encode('another-key-of-at-least-32-bytes-0000'),
    ).seal(
      {
        intentId: 'pay_x',
        tool: 'report',
        argsHash: 'x',
        step: { kind: 'choose' },
        expiresAt: Date.now() + 60_000,
      },
      'connection:x',
    ).state;
    const refused = await call({ inputResponses: answer, requestState: forged });
    expect((refused._meta?.[REQUEST_STATE_ERROR_META_KEY] as { reason?: string } | undefined)?.reason).toBe(
      'mac',
    );
    expect(w.runs).toHaveLength(0);
  });
});

describe('payrouter/mcp-v2: configuration', () => {
  it('refuses a short requestStateKey at construction', () => {
    expect(
      () => new PayRouter({ providers: { walleot: { apiKey: 'k' } }, requestStateKey: 'short' }),
    ).toThrow(/requestStateKey must be at least 32 bytes/);
  });

  it('refuses to install after tools are registered, and a 1.x subject option without a v2 one', async () => {
    const w = await world();
    const early = new McpServer({ name: 'early', version: '1.0.0' });
    early.registerTool('free', { inputSchema: z.object({}) }, async () => ({ content: [] }));
    expect(() => installV2(w.router, early)).toThrow(ConfigError);
    const withSubject = new PayRouter({
      providers: [w.sandbox.providers().walleot],
      logger: silentLogger,
      subject: () => 'x',
      requestStateKey: KEY,
    });
    cleanups.push(() => withSubject.close());
    expect(() => installV2(withSubject, new McpServer({ name: 's', version: '1.0.0' }))).toThrow(
      /installV2\(router, server, \{ subject/,
    );
    expect(() =>
      installV2(withSubject, new McpServer({ name: 's', version: '1.0.0' }), { subject: () => 'x' }),
    ).not.toThrow();
  });
});

describe("payrouter/mcp-v2: createMcpHandler's stateless legacy leg", () => {
  it('gives a 1.x client the payment-required result, even one that declared elicitation: nothing can reach it', async () => {
    const w = await world();
    const client = new LegacyClient(
      { name: 'legacy-stateless', version: '1.0.0' },
      { capabilities: { elicitation: { form: {}, url: {} } } },
    );
    const asked: unknown[] = [];
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(request.params);
      return { action: 'cancel' };
    });
    await client.connect(new LegacyHttpTransport(new URL('http://payrouter.test/mcp'), { fetch: w.fetch }));
    cleanups.push(() => client.close());
    const required = (await client.callTool({ name: 'stripe_only', arguments: { n: 5 } })) as CallToolResult;
    expect(asked).toHaveLength(0);
    expect(required.isError).toBe(true);
    const payment = paymentOf(required)!;
    expect(textOf(required)).toContain(payment.payment_id);
    await payAtUrl({ mode: 'url', message: '', url: payment.payment_url! } as never);
    const done = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id, method: null },
    })) as CallToolResult;
    expect(textOf(done)).toBe('card 5');
    expect(w.runs).toHaveLength(1);
  });
});

describe('payrouter/mcp-v2: capabilities are read per request', () => {
  it('a retry that declares nothing is answered with the payment-required result, not another input request', async () => {
    const w = await world();
    const asker = await connectV2(w.fetch, { manual: true });
    const silent = await connectV2(w.fetch, { manual: true, elicitation: 'none' });
    cleanups.push(asker.close, silent.close);
    const params = { name: 'report', arguments: { topic: 'caps' } };
    const first = (await asker.client.request(
      { method: 'tools/call', params },
      { allowInputRequired: true },
    )) as CallToolResult | { resultType: string; requestState?: string };
    if (!isInputRequiredResult(first)) throw new Error('expected input_required');
    // The same round retried by a client that declares no elicitation: nothing is asked of it.
    const retried = (await silent.client.request(
      {
        method: 'tools/call',
        params: {
          ...params,
          inputResponses: { payrouter_method: { action: 'accept', content: { method: 'walleot' } } },
          requestState: first.requestState,
        },
      },
      { allowInputRequired: true },
    )) as CallToolResult;
    expect(isInputRequiredResult(retried)).toBe(false);
    expect(retried.isError).toBe(true);
    expect(paymentOf(retried)?.payment_id).toBe(paymentOf(first)?.payment_id);
    expect(w.runs).toHaveLength(0);
  });
});
