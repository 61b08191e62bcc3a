import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { x402Client } from '@x402/core/client';
import type { PaymentPayload, PaymentRequired } from '@x402/core/types';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { memoryStore, PayRouter } from '../src/index.js';
import { type Sandbox, type SandboxWallet, startSandbox } from '../src/sandbox.js';
import { connectClient, paymentOf, textOf } from './support/paid-server.js';

/**
 * The machine path over real parts: an agent built on @x402/core's x402Client with @x402/evm's
 * ExactEvmScheme speaks the published x402 MCP transport (PaymentRequired in structuredContent
 * or content[0].text, the payment in _meta["x402/payment"], the receipt in
 * _meta["x402/payment-response"]) to a PayRouter whose X402Provider verifies and settles through
 * the facilitator stand-in over HTTP.
 */

let sandbox: Sandbox;
const runs: string[] = [];
const routers: PayRouter[] = [];

beforeAll(async () => {
  sandbox = await startSandbox();
});
afterAll(async () => {
  await Promise.all(routers.map((r) => r.close()));
  await sandbox.close();
});

function makeServer() {
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  const providers = sandbox.providers({ logger: quiet });
  const server = new McpServer({ name: 'x402-tools', version: '1.0.0' });
  const router = new PayRouter(server, {
    store: memoryStore(),
    providers: [providers.walleot, sandbox.x402Provider({ logger: quiet })],
    logger: quiet,
    timeouts: { choiceMs: 2000, paymentWaitMs: 1000 },
    confirmation: { pendingTtlMs: 50, poll: { initialMs: 20, maxMs: 100 } },
  });
  routers.push(router);
  server.registerTool(
    'summarize',
    {
      description: 'Summarize',
      inputSchema: { text: z.string() },
      price: { amount: '0.25', currency: 'USD' },
    },
    async ({ text }) => {
      runs.push(`summarize:${text}`);
      return { content: [{ type: 'text', text: `Summary of ${text}` }] };
    },
  );
  server.registerTool(
    'translate',
    {
      description: 'Translate',
      inputSchema: { text: z.string() },
      price: { amount: '0.25', currency: 'USD' },
    },
    async ({ text }) => {
      runs.push(`translate:${text}`);
      return { content: [{ type: 'text', text: `Translated ${text}` }] };
    },
  );
  server.registerTool(
    'pricey',
    { description: 'Pricey', inputSchema: { text: z.string() }, price: { amount: '0.50', currency: 'USD' } },
    async ({ text }) => {
      runs.push(`pricey:${text}`);
      return { content: [{ type: 'text', text: `Pricey ${text}` }] };
    },
  );
  server.registerTool(
    'flaky',
    {
      description: 'Always fails',
      inputSchema: { text: z.string() },
      price: { amount: '0.10', currency: 'USD' },
    },
    async ({ text }) => {
      runs.push(`flaky:${text}`);
      return { isError: true, content: [{ type: 'text', text: 'upstream unavailable' }] };
    },
  );
  server.registerTool(
    'typed',
    {
      description: 'Typed output',
      inputSchema: { text: z.string() },
      outputSchema: { length: z.number() },
      price: { amount: '0.05', currency: 'USD' },
    },
    async ({ text }) => {
      runs.push(`typed:${text}`);
      return {
        content: [{ type: 'text', text: String(text.length) }],
        structuredContent: { length: text.length },
      };
    },
  );
  return server;
}

/** An agent that pays by itself: its wallet signs what the tool's payment-required result asks for. */
function agentFor(wallet: SandboxWallet) {
  return new x402Client().register('eip155:84532', new ExactEvmScheme(wallet.account));
}

/** What an x402 MCP client reads: structuredContent when it is a PaymentRequired, else content[0].text. */
function paymentRequiredOf(result: CallToolResult): PaymentRequired | undefined {
  if (result.isError !== true) return undefined;
  const structured = result.structuredContent as Record<string, unknown> | undefined;
  if (structured && structured['x402Version'] !== undefined && Array.isArray(structured['accepts']))
    return structured as unknown as PaymentRequired;
  const first = result.content[0];
  if (first?.type !== 'text') return undefined;
  try {
    const parsed = JSON.parse(first.text) as Record<string, unknown>;
    return Array.isArray(parsed['accepts']) ? (parsed as unknown as PaymentRequired) : undefined;
  } catch {
    return undefined;
  }
}

async function call(client: Client, name: string, args: Record<string, unknown>, payment?: PaymentPayload) {
  return (await client.callTool({
    name,
    arguments: args,
    ...(payment ? { _meta: { 'x402/payment': payment } } : {}),
  })) as CallToolResult;
}

/** The published client flow: call, read the requirements, sign, retry with the payment. */
async function agentPays(client: Client, agent: x402Client, name: string, args: Record<string, unknown>) {
  const first = await call(client, name, args);
  const required = paymentRequiredOf(first);
  if (!required) throw new Error(`no x402 requirements in: ${textOf(first)}`);
  const payload = await agent.createPaymentPayload(required);
  const second = await call(client, name, args, payload);
  return { first, required, payload, second };
}

const receiptOf = (result: CallToolResult) =>
  result._meta?.['x402/payment-response'] as { success: boolean; transaction: string } | undefined;
const count = (entry: string) => runs.filter((r) => r === entry).length;

describe('x402: an agent pays by itself', () => {
  it('pays, the tool runs once, the settlement receipt comes back, and the money moved once', async () => {
    const server = makeServer();
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const wallet = sandbox.x402.newWallet();
    const before = sandbox.x402.settlements.length;

    const { first, required, second } = await agentPays(client, agentFor(wallet), 'summarize', { text: 'a' });
    // One result for both: the x402 requirements and our payment object.
    expect(required.x402Version).toBe(2);
    expect(required.resource.url).toBe('mcp://tool/summarize');
    expect(required.accepts[0]).toMatchObject({ scheme: 'exact', network: 'eip155:84532', amount: '250000' });
    expect((first.structuredContent as Record<string, unknown>)['payment']).toBeDefined();
    expect(JSON.parse((first.content[0] as { text: string }).text)).toMatchObject({ x402Version: 2 });

    expect(second.isError).toBeFalsy();
    expect(textOf(second)).toBe('Summary of a');
    expect(receiptOf(second)).toMatchObject({ success: true, network: 'eip155:84532' });
    expect(receiptOf(second)?.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(paymentOf(second)).toMatchObject({ status: 'paid', provider: 'x402' });
    expect(count('summarize:a')).toBe(1);
    expect(sandbox.x402.settlements.length).toBe(before + 1);
    expect(sandbox.x402.balanceOf(wallet.address)).toBe(100_000_000n - 250_000n);
    await close();
  });

  it('does not settle a tool that fails, and the same payment retries it without paying twice', async () => {
    const server = makeServer();
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const wallet = sandbox.x402.newWallet();
    const before = sandbox.x402.settlements.length;
    const { payload, second } = await agentPays(client, agentFor(wallet), 'flaky', { text: 'x' });
    expect(second.isError).toBe(true);
    expect(textOf(second)).toContain('upstream unavailable');
    expect(receiptOf(second)).toBeUndefined();
    expect(sandbox.x402.settlements.length).toBe(before);
    expect(sandbox.x402.balanceOf(wallet.address)).toBe(100_000_000n);
    // The retry with the same credential is this call's own: it runs again, still unsettled.
    const retry = await call(client, 'flaky', { text: 'x' }, payload);
    expect(retry.isError).toBe(true);
    expect(count('flaky:x')).toBe(2);
    expect(sandbox.x402.settlements.length).toBe(before);
    await close();
  });

  it('withholds the result when settlement fails and says why; a new payment gets the kept result', async () => {
    const server = makeServer();
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const wallet = sandbox.x402.newWallet();
    const agent = agentFor(wallet);
    sandbox.x402.failNextSettle('invalid_exact_evm_insufficient_balance');
    const { second } = await agentPays(client, agent, 'summarize', { text: 'withheld' });
    expect(second.isError).toBe(true);
    expect(textOf(second)).not.toContain('Summary of withheld');
    const required = paymentRequiredOf(second);
    expect(required?.error).toContain('Payment settlement failed: invalid_exact_evm_insufficient_balance');
    expect(receiptOf(second)).toBeUndefined();
    expect(count('summarize:withheld')).toBe(1);
    expect(sandbox.x402.balanceOf(wallet.address)).toBe(100_000_000n);

    // Pay again (a fresh authorization for the same payment): settled now, the kept result, no second run.
    const payload = await agent.createPaymentPayload(required!);
    const third = await call(client, 'summarize', { text: 'withheld' }, payload);
    expect(third.isError).toBeFalsy();
    expect(textOf(third)).toBe('Summary of withheld');
    expect(receiptOf(third)?.success).toBe(true);
    expect(count('summarize:withheld')).toBe(1);
    expect(sandbox.x402.balanceOf(wallet.address)).toBe(100_000_000n - 250_000n);
    await close();
  });

  it('a replayed credential runs nothing and is not settled again', async () => {
    const server = makeServer();
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const wallet = sandbox.x402.newWallet();
    const { payload, second } = await agentPays(client, agentFor(wallet), 'summarize', { text: 'once' });
    expect(textOf(second)).toBe('Summary of once');
    const settled = sandbox.x402.settlements.length;
    // The same call again is a new purchase: the old credential does not pay it.
    const replay = await call(client, 'summarize', { text: 'once' }, payload);
    expect(replay.isError).toBe(true);
    expect(paymentRequiredOf(replay)?.error).toMatch(/Payment not accepted/);
    expect(count('summarize:once')).toBe(1);
    expect(sandbox.x402.settlements.length).toBe(settled);
    await close();
  });

  it('an altered credential, or one for another tool, amount or arguments, runs nothing', async () => {
    const server = makeServer();
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const wallet = sandbox.x402.newWallet();
    const agent = agentFor(wallet);
    const first = await call(client, 'summarize', { text: 'bound' });
    const payload = await agent.createPaymentPayload(paymentRequiredOf(first)!);
    const inner = payload.payload as { authorization: Record<string, string>; signature: string };

    const attempts: Array<[string, Record<string, unknown>, PaymentPayload]> = [
      // Another tool at the same price, and the same tool with other arguments.
      ['translate', { text: 'bound' }, payload],
      ['summarize', { text: 'other' }, payload],
      // Another amount: the pricier tool.
      ['pricey', { text: 'bound' }, payload],
      // Altered: the accepted amount, the signed value, the signature.
      ['summarize', { text: 'bound' }, { ...payload, accepted: { ...payload.accepted, amount: '1' } }],
      [
        'summarize',
        { text: 'bound' },
        { ...payload, payload: { ...inner, authorization: { ...inner.authorization, value: '1' } } },
      ],
      [
        'summarize',
        { text: 'bound' },
        { ...payload, payload: { ...inner, signature: `${inner.signature.slice(0, -4)}0000` } },
      ],
    ];
    for (const [tool, args, credential] of attempts) {
      const result = await call(client, tool, args, credential);
      expect(result.isError, `${tool} ${JSON.stringify(args)}`).toBe(true);
      expect(paymentRequiredOf(result)?.error).toMatch(/Payment not accepted/);
    }
    expect(runs.filter((r) => r.endsWith(':bound') || r === 'summarize:other')).toEqual([]);
    expect(sandbox.x402.balanceOf(wallet.address)).toBe(100_000_000n);

    // The genuine credential still pays its own call.
    const paid = await call(client, 'summarize', { text: 'bound' }, payload);
    expect(textOf(paid)).toBe('Summary of bound');
    await close();
  });

  it("another payer (another connection's subject) cannot use a credential made for someone else's call", async () => {
    const server = makeServer();
    const alice = await connectClient(makeServer(), { elicitation: 'none', name: 'alice' });
    const bob = await connectClient(server, { elicitation: 'none', name: 'bob' });
    const wallet = sandbox.x402.newWallet();
    const first = await call(alice.client, 'summarize', { text: 'mine' });
    const payload = await agentFor(wallet).createPaymentPayload(paymentRequiredOf(first)!);
    const stolen = await call(bob.client, 'summarize', { text: 'mine' }, payload);
    expect(stolen.isError).toBe(true);
    expect(count('summarize:mine')).toBe(0);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('a tool with an outputSchema carries the requirements in _meta and the text, not structuredContent', async () => {
    const server = makeServer();
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const first = await call(client, 'typed', { text: 'abc' });
    expect(first.isError).toBe(true);
    expect(first.structuredContent).toBeUndefined();
    expect(first._meta?.['x402/payment-required']).toMatchObject({ x402Version: 2 });
    const { second } = await agentPays(client, agentFor(sandbox.x402.newWallet()), 'typed', { text: 'abc' });
    expect(second.structuredContent).toEqual({ length: 3 });
    expect(receiptOf(second)?.success).toBe(true);
    await close();
  });
});

describe('x402: the facilitator fails', () => {
  it('a verify that errors (500, malformed) runs nothing and says so; the payment still works after', async () => {
    const server = makeServer();
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const agent = agentFor(sandbox.x402.newWallet());
    const first = await call(client, 'summarize', { text: 'faults' });
    const payload = await agent.createPaymentPayload(paymentRequiredOf(first)!);
    sandbox.x402.failNext({ status: 500, pathIncludes: '/verify' });
    const down = await call(client, 'summarize', { text: 'faults' }, payload);
    expect(down.isError).toBe(true);
    expect(paymentRequiredOf(down)?.error).toMatch(/facilitator could not verify/);
    sandbox.x402.failNext({ kind: 'malformed', pathIncludes: '/verify' });
    const garbled = await call(client, 'summarize', { text: 'faults' }, payload);
    expect(garbled.isError).toBe(true);
    expect(count('summarize:faults')).toBe(0);
    // Nothing was spent: the same credential pays once the facilitator is back.
    const paid = await call(client, 'summarize', { text: 'faults' }, payload);
    expect(textOf(paid)).toBe('Summary of faults');
    await close();
  });

  it('a settle that errors (500) withholds the result, like a refused settlement', async () => {
    const server = makeServer();
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const wallet = sandbox.x402.newWallet();
    sandbox.x402.failNext({ status: 500, pathIncludes: '/settle' });
    const { second } = await agentPays(client, agentFor(wallet), 'summarize', { text: 'settle500' });
    expect(second.isError).toBe(true);
    expect(textOf(second)).not.toContain('Summary of settle500');
    expect(paymentRequiredOf(second)?.error).toMatch(/Payment settlement failed/);
    expect(sandbox.x402.balanceOf(wallet.address)).toBe(100_000_000n);
    await close();
  });

  it('the same credential sent by two concurrent calls runs the tool once and settles once', async () => {
    const server = makeServer();
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const wallet = sandbox.x402.newWallet();
    const first = await call(client, 'summarize', { text: 'race' });
    const payload = await agentFor(wallet).createPaymentPayload(paymentRequiredOf(first)!);
    const before = sandbox.x402.settlements.length;
    const results = await Promise.all([
      call(client, 'summarize', { text: 'race' }, payload),
      call(client, 'summarize', { text: 'race' }, payload),
    ]);
    expect(results.filter((r) => textOf(r) === 'Summary of race').length).toBeGreaterThanOrEqual(1);
    expect(count('summarize:race')).toBe(1);
    expect(sandbox.x402.settlements.length).toBe(before + 1);
    expect(sandbox.x402.balanceOf(wallet.address)).toBe(100_000_000n - 250_000n);
    await close();
  });
});

describe('x402: a person and an agent on the same server', () => {
  it('each get the path they can use from one result; an agent that paid gets the machine offer first', async () => {
    const server = makeServer();
    const person = await connectClient(server, { elicitation: 'none', name: 'person' });
    const asked = await call(person.client, 'summarize', { text: 'human' });
    const info = paymentOf(asked);
    // The person's method is a link (Walleot), with the machine offer beside it in the same result.
    expect(info?.provider).toBe('walleot');
    expect(info?.payment_url).toMatch(/^http/);
    expect(paymentRequiredOf(asked)?.accepts).toHaveLength(1);
    expect(textOf(asked)).toContain('Open this link to pay');
    await sandbox.pay(info!.payment_url!);
    const confirmed = await person.client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: info!.payment_id },
    });
    expect(textOf(confirmed)).toBe('Summary of human');

    const agentServer = makeServer();
    const agentConnection = await connectClient(agentServer, { elicitation: 'none', name: 'agent' });
    const agent = agentFor(sandbox.x402.newWallet());
    const { second } = await agentPays(agentConnection.client, agent, 'summarize', { text: 'machine' });
    expect(textOf(second)).toBe('Summary of machine');
    // On this connection the agent has paid by itself: its next call is routed to the machine offer.
    const next = await call(agentConnection.client, 'translate', { text: 'machine' });
    expect(paymentOf(next)?.provider).toBe('x402');
    expect(paymentOf(next)?.payment_url).toBeNull();
    expect(textOf(next)).toContain('x402');
    const paid = await call(
      agentConnection.client,
      'translate',
      { text: 'machine' },
      await agent.createPaymentPayload(paymentRequiredOf(next)!),
    );
    expect(textOf(paid)).toBe('Translated machine');
    expect(count('translate:machine')).toBe(1);
    await Promise.all([person.close(), agentConnection.close()]);
  });
});
