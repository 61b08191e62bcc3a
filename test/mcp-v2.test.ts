// payrouter/mcp-v2 in one process: the v2 Client (protocol 2026-07-28) over Streamable HTTP into
// createMcpHandler, a fresh v2 McpServer per request, the sandbox taking the payments.
import type { CallToolResult } from '@modelcontextprotocol/client';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { memoryStore, PAYMENT_META_KEY, type PaymentInfo, PayRouter, silentLogger } from '../src/index.js';
import { installV2, REQUEST_STATE_ERROR_META_KEY } from '../src/mcp-v2.js';
import { startSandbox } from '../src/sandbox.js';
import { textOf } from './support/paid-server.js';
import { connectV2, inProcessFetch, offeredMethods, type userAuth } from './support/v2-world.js';

const KEY = 'test-request-state-key-0123456789abcdef';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.useRealTimers();
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function world(options: { auth?: () => ReturnType<typeof userAuth> | undefined } = {}) {
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

const paymentOf = (r: CallToolResult) => r._meta?.[PAYMENT_META_KEY] as PaymentInfo | undefined;

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
