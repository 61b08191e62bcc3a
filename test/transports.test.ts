import { request } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  type CallToolResult,
  type ElicitRequest,
  ElicitRequestSchema,
  type ElicitResult,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type RunningServer, startHttpServer } from '../examples/http-server.js';
import { capabilitiesFor, type Elicitation, payAt, paymentOf, textOf } from './support/paid-server.js';

const call = async (client: Client, name: string, args: Record<string, unknown>) =>
  (await client.callTool({ name, arguments: args })) as CallToolResult;

describe('stdio: examples/stdio-server.ts in a child process', () => {
  it('a client without elicitation pays at the link, confirms, and the tool runs once', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', 'examples/stdio-server.ts'],
      cwd: process.cwd(),
      // Only the SDK's minimal environment: no provider keys, so the child starts its own sandbox.
      env: getDefaultEnvironment(),
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const client = new Client({ name: 'stdio-test', version: '1.0.0' }, { capabilities: {} });
    await client.connect(transport);
    const pid = transport.pid;
    try {
      const args = { text: 'Pay first. Then it runs!' };
      const required = await call(client, 'analyze_text', args);
      expect(required.isError, stderr).toBe(true);
      const payment = paymentOf(required)!;
      expect(payment).toMatchObject({ status: 'pending', amount: '0.50', currency: 'USD' });
      expect(payment.payment_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/checkout\//);
      expect(stderr).toContain('using the local sandbox');
      expect(stderr).not.toContain('analyze_text ran');

      await payAt(payment.payment_url!);
      const done = await call(client, 'confirm_payment', { payment_id: payment.payment_id });
      expect(done.isError, textOf(done)).toBeFalsy();
      expect(textOf(done)).toBe('5 words, 2 sentences');

      // The result is stored: confirming again returns it without a second run, and calling the
      // tool again is a new call that needs a new payment.
      const again = await call(client, 'confirm_payment', { payment_id: payment.payment_id });
      expect(textOf(again)).toBe('5 words, 2 sentences');
      const next = await call(client, 'analyze_text', args);
      expect(paymentOf(next)).toMatchObject({ status: 'pending' });
      expect(paymentOf(next)?.payment_id).not.toBe(payment.payment_id);
      expect(stderr.match(/analyze_text ran/g)).toHaveLength(1);
    } finally {
      await client.close();
    }
    // The server shut itself down when its stdin closed (it logs that just before exiting).
    expect(stderr).toContain('stdio server closed');
    expect(() => process.kill(pid!, 0)).toThrow();
  }, 30_000);
});

describe('Streamable HTTP: examples/http-server.ts, stateful sessions', () => {
  let running: RunningServer;
  const open: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    // The example reads keys from the environment; make sure it uses the sandbox.
    vi.stubEnv('WALLEOT_API_KEY', '');
    vi.stubEnv('STRIPE_SECRET_KEY', '');
    vi.stubEnv('PUBLIC_URL', '');
    running = await startHttpServer({ port: 0 });
  });
  afterAll(async () => {
    await Promise.all(open.map((close) => close()));
    await running?.close();
    vi.unstubAllEnvs();
  });

  async function connect(
    elicitation: Elicitation,
    onElicit?: (r: ElicitRequest['params']) => Promise<ElicitResult>,
  ) {
    const client = new Client(
      { name: `http-${elicitation}`, version: '1.0.0' },
      { capabilities: capabilitiesFor(elicitation) },
    );
    const elicitations: ElicitRequest['params'][] = [];
    if (elicitation !== 'none') {
      client.setRequestHandler(ElicitRequestSchema, async (request) => {
        elicitations.push(request.params);
        return onElicit ? onElicit(request.params) : { action: 'cancel' };
      });
    }
    const transport = new StreamableHTTPClientTransport(new URL(running.url));
    await client.connect(transport);
    const close = async () => {
      await transport.terminateSession();
      await client.close();
    };
    open.push(close);
    return { client, transport, elicitations };
  }

  it('(a) no elicitation: payment-required result, pay at the link, confirm_payment', async () => {
    const { client } = await connect('none');
    const required = await call(client, 'generate_report', { topic: 'tides' });
    expect(required.isError).toBe(true);
    const payment = paymentOf(required)!;
    expect(payment).toMatchObject({ status: 'pending', amount: '2.00', currency: 'USD' });
    expect(payment.alternatives.length).toBe(1);

    await payAt(payment.payment_url!);
    const done = await call(client, 'confirm_payment', { payment_id: payment.payment_id });
    expect(textOf(done)).toBe('Report on tides: all is well.');
    expect(paymentOf(done)?.status).toBe('paid');
  });

  it('(b) form only: the user picks the card, the link comes in the result', async () => {
    const { client, elicitations } = await connect('form', async () => ({
      action: 'accept',
      content: { method: 'stripe', remember: false },
    }));
    const required = await call(client, 'generate_report', { topic: 'cards' });
    expect(elicitations.map((e) => e.mode ?? 'form')).toEqual(['form']);
    const payment = paymentOf(required)!;
    expect(payment.provider).toBe('stripe');
    expect(payment.payment_url).toContain('/checkout/cs_');

    await payAt(payment.payment_url!);
    const done = await call(client, 'confirm_payment', { payment_id: payment.payment_id });
    expect(textOf(done)).toBe('Report on cards: all is well.');
  });

  it('(c) form and URL: picks a method, pays at the URL elicitation, gets the result in one call', async () => {
    const { client, elicitations } = await connect('form+url', async (request) => {
      if (request.mode === 'url') {
        await payAt(request.url);
        return { action: 'accept' };
      }
      return { action: 'accept', content: { method: 'walleot', remember: false } };
    });
    const result = await call(client, 'generate_report', { topic: 'owls' });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(textOf(result)).toBe('Report on owls: all is well.');
    expect(paymentOf(result)).toMatchObject({ status: 'paid', provider: 'walleot' });
    expect(elicitations.map((e) => e.mode ?? 'form')).toEqual(['form', 'url']);
  });

  it('refuses a foreign Host header (DNS rebinding) and answers 404 for an unknown session', async () => {
    const initialize = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    };
    const url = new URL(running.url);
    const rebound = await rawPost(url, initialize, { host: 'attacker.example' });
    expect(rebound.status).toBe(403);
    const unknown = await rawPost(url, initialize, { host: url.host, 'mcp-session-id': 'no-such-session' });
    expect(unknown.status).toBe(404);
  });

  it("two sessions at once do not see each other's payments", async () => {
    const a = await connect('none');
    const b = await connect('none');
    expect(a.transport.sessionId).toBeDefined();
    expect(a.transport.sessionId).not.toBe(b.transport.sessionId);

    const [resultA, resultB] = await Promise.all([
      call(a.client, 'generate_report', { topic: 'shared' }),
      call(b.client, 'generate_report', { topic: 'shared' }),
    ]);
    const paymentA = paymentOf(resultA)!;
    const paymentB = paymentOf(resultB)!;
    // Same tool, same arguments, but each session has its own payment.
    expect(paymentB.payment_id).not.toBe(paymentA.payment_id);

    await payAt(paymentA.payment_url!);
    // An anonymous payer's payment is redeemable from another session by its id: it runs its own
    // bound call once, and the session that started it gets the same stored result.
    const redeemed = await call(b.client, 'confirm_payment', { payment_id: paymentA.payment_id });
    expect(textOf(redeemed)).toBe('Report on shared: all is well.');
    const doneA = await call(a.client, 'confirm_payment', { payment_id: paymentA.payment_id });
    expect(textOf(doneA)).toBe('Report on shared: all is well.');
    expect(paymentOf(doneA)).toMatchObject({ payment_id: paymentA.payment_id, status: 'paid' });
    const retryB = await call(b.client, 'generate_report', { topic: 'shared' });
    expect(paymentOf(retryB)).toMatchObject({ payment_id: paymentB.payment_id, status: 'pending' });
  });
});

/** A POST with exactly these headers (fetch would not let a test set Host). */
function rawPost(url: URL, body: unknown, headers: Record<string, string>): Promise<{ status: number }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          ...headers,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': String(Buffer.byteLength(payload)),
        },
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.once('error', reject);
    req.end(payload);
  });
}
