// x402 on the v2 path: an agent on the v2 Client (protocol 2026-07-28, stateless Streamable HTTP
// into createMcpHandler, no session, no sign-in) reads the x402 requirements from the
// payment-required result, signs with @x402/core's x402Client, and retries with
// _meta["x402/payment"]; the X402Provider verifies and settles through the sandbox's facilitator
// stand-in over HTTP.
import type { CallToolResult } from '@modelcontextprotocol/client';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { x402Client } from '@x402/core/client';
import type { PaymentPayload, PaymentRequired } from '@x402/core/types';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { memoryStore, PayRouter, silentLogger } from '../src/index.js';
import { installV2 } from '../src/mcp-v2.js';
import { type Sandbox, type SandboxWallet, startSandbox } from '../src/sandbox.js';
import { paymentOf, textOf } from './support/paid-server.js';
import { connectV2, inProcessFetch, userAuth } from './support/v2-world.js';

let sandbox: Sandbox;
let router: PayRouter;
let handler: ReturnType<typeof createMcpHandler>;
const runs: string[] = [];
/** Who the next request is signed in as (undefined: anonymous). */
let signedIn: string | undefined;

beforeAll(async () => {
  sandbox = await startSandbox();
  router = new PayRouter({
    store: memoryStore(),
    providers: [
      sandbox.providers({ logger: silentLogger }).walleot,
      sandbox.x402Provider({ logger: silentLogger }),
    ],
    logger: silentLogger,
    requestStateKey: 'x402-v2-request-state-key-0123456789abcdef',
    timeouts: { choiceMs: 2000, paymentWaitMs: 1000 },
  });
  handler = createMcpHandler(() => {
    const server = installV2(router, new McpServer({ name: 'x402-v2', version: '1.0.0' }));
    for (const [name, amount] of [
      ['summarize', '0.25'],
      ['pricey', '0.50'],
    ] as const) {
      server.registerTool(
        name,
        {
          description: name,
          inputSchema: z.object({ text: z.string() }),
          price: { amount, currency: 'USD' },
        },
        async ({ text }) => {
          runs.push(`${name}:${text}`);
          return { content: [{ type: 'text', text: `${name} of ${text}` }] };
        },
      );
    }
    return server;
  });
});
afterAll(async () => {
  await handler.close();
  await router.close();
  await sandbox.close();
});

async function agent() {
  const user = await connectV2(
    inProcessFetch(handler, () => (signedIn ? userAuth(signedIn) : undefined)),
    { elicitation: 'none' },
  );
  return user;
}

const signerFor = (wallet: SandboxWallet) =>
  new x402Client().register('eip155:84532', new ExactEvmScheme(wallet.account));

function paymentRequiredOf(result: CallToolResult): PaymentRequired | undefined {
  const structured = result.structuredContent as Record<string, unknown> | undefined;
  if (result.isError !== true || !Array.isArray(structured?.['accepts'])) return undefined;
  return structured as unknown as PaymentRequired;
}

type Agent = Awaited<ReturnType<typeof agent>>;
const call = async (a: Agent, name: string, args: Record<string, unknown>, payment?: PaymentPayload) =>
  (await a.client.callTool({
    name,
    arguments: args,
    ...(payment ? { _meta: { 'x402/payment': payment } } : {}),
  })) as CallToolResult;
const receiptOf = (result: CallToolResult) =>
  result._meta?.['x402/payment-response'] as { success: boolean; transaction: string } | undefined;
const count = (entry: string) => runs.filter((r) => r === entry).length;

describe('x402 over the v2 Client, stateless and anonymous', () => {
  it('pays by the credential: authorized, the tool runs once, settled once, the receipt comes back', async () => {
    const a = await agent();
    const wallet = sandbox.x402.newWallet();
    const before = sandbox.x402.settlements.length;
    const first = await call(a, 'summarize', { text: 'a' });
    const required = paymentRequiredOf(first)!;
    expect(required.accepts[0]).toMatchObject({ scheme: 'exact', network: 'eip155:84532', amount: '250000' });
    const payload = await signerFor(wallet).createPaymentPayload(required);

    // A new request with no session: the credential names the payment it pays.
    const paid = await call(a, 'summarize', { text: 'a' }, payload);
    expect(paid.isError, textOf(paid)).toBeFalsy();
    expect(textOf(paid)).toBe('summarize of a');
    expect(receiptOf(paid)).toMatchObject({ success: true, network: 'eip155:84532' });
    expect(paymentOf(paid)).toMatchObject({ status: 'paid', provider: 'x402' });
    expect(count('summarize:a')).toBe(1);
    expect(sandbox.x402.settlements.length).toBe(before + 1);
    expect(sandbox.x402.balanceOf(wallet.address)).toBe(100_000_000n - 250_000n);
    await a.close();
  });

  it('a replayed credential runs nothing and settles nothing again', async () => {
    const a = await agent();
    const wallet = sandbox.x402.newWallet();
    const first = await call(a, 'summarize', { text: 'once' });
    const payload = await signerFor(wallet).createPaymentPayload(paymentRequiredOf(first)!);
    expect(textOf(await call(a, 'summarize', { text: 'once' }, payload))).toBe('summarize of once');
    const settled = sandbox.x402.settlements.length;

    const replay = await call(a, 'summarize', { text: 'once' }, payload);
    expect(replay.isError).toBe(true);
    expect(paymentRequiredOf(replay)?.error).toMatch(/Payment not accepted/);
    expect(count('summarize:once')).toBe(1);
    expect(sandbox.x402.settlements.length).toBe(settled);
    expect(sandbox.x402.balanceOf(wallet.address)).toBe(100_000_000n - 250_000n);
    await a.close();
  });

  it('an altered credential, or one for another tool or arguments, runs nothing; the genuine one still pays', async () => {
    const a = await agent();
    const wallet = sandbox.x402.newWallet();
    const first = await call(a, 'summarize', { text: 'bound' });
    const payload = await signerFor(wallet).createPaymentPayload(paymentRequiredOf(first)!);
    const inner = payload.payload as { authorization: Record<string, string>; signature: string };
    const attempts: Array<[string, Record<string, unknown>, PaymentPayload]> = [
      ['pricey', { text: 'bound' }, payload],
      ['summarize', { text: 'other' }, payload],
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
      const result = await call(a, tool, args, credential);
      expect(result.isError, `${tool} ${JSON.stringify(args)}`).toBe(true);
      expect(paymentRequiredOf(result)?.error).toMatch(/Payment not accepted/);
    }
    expect(runs.filter((r) => r.endsWith(':bound') || r === 'summarize:other')).toEqual([]);
    expect(sandbox.x402.balanceOf(wallet.address)).toBe(100_000_000n);

    expect(textOf(await call(a, 'summarize', { text: 'bound' }, payload))).toBe('summarize of bound');
    expect(count('summarize:bound')).toBe(1);
    await a.close();
  });

  it("a signed-in payer's credential is theirs: another signed-in payer cannot spend it", async () => {
    const a = await agent();
    const wallet = sandbox.x402.newWallet();
    signedIn = 'alice';
    const first = await call(a, 'summarize', { text: 'mine' });
    const payload = await signerFor(wallet).createPaymentPayload(paymentRequiredOf(first)!);
    signedIn = 'bob';
    const stolen = await call(a, 'summarize', { text: 'mine' }, payload);
    expect(stolen.isError).toBe(true);
    expect(count('summarize:mine')).toBe(0);
    signedIn = 'alice';
    expect(textOf(await call(a, 'summarize', { text: 'mine' }, payload))).toBe('summarize of mine');
    signedIn = undefined;
    await a.close();
  });
});
