// A 1.x server on stateless Streamable HTTP (no sessions: a new McpServer and transport per
// request, as on serverless hosts): an anonymous caller is a new connection on every request, so
// a per-payer bound alone never stops one client from opening payments without end. Those
// callers are pooled per tool, like anonymous stateless callers of protocol 2026-07-28.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { memoryStore, PayRouter, silentLogger } from '../src/index.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { payAt, paymentOf, textOf } from './support/paid-server.js';

let sandbox: Sandbox;
let http: Server;
let router: PayRouter;
let url: URL;
let runs = 0;

beforeAll(async () => {
  sandbox = await startSandbox();
  router = new PayRouter({
    providers: [sandbox.providers({ logger: silentLogger }).stripe],
    store: memoryStore(),
    logger: silentLogger,
    limits: { openPerToolAnonymous: 2, free: { calls: 1, per: 'day' } },
  });
  http = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
    // Stateless: every request gets its own server and transport.
    const server = router.install(new McpServer({ name: 'stateless', version: '1.0.0' }));
    server.registerTool(
      'report',
      {
        description: 'A report',
        inputSchema: { topic: z.string() },
        price: { amount: '1.00', currency: 'USD' },
      },
      async ({ topic }) => {
        runs += 1;
        return { content: [{ type: 'text', text: `report on ${topic}` }] };
      },
    );
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = new URL(`http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`);
});

afterAll(async () => {
  await new Promise<void>((resolve) => http.close(() => resolve()));
  await router.close();
  await sandbox.close();
});

async function anonymousClient() {
  const client = new Client({ name: 'stateless-client', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(url));
  return client;
}

describe('1.x stateless Streamable HTTP, anonymous callers', () => {
  it('share a free allowance and a bound on open payments per tool, though each request is a new connection', async () => {
    const client = await anonymousClient();
    try {
      const call = async (topic: string) =>
        (await client.callTool({ name: 'report', arguments: { topic } })) as CallToolResult;
      // The day's one free call, then payments: two open at most over all such callers.
      expect(textOf(await call('free'))).toBe('report on free');
      const first = await call('a');
      const second = await call('b');
      expect(paymentOf(first)?.status).toBe('pending');
      expect(paymentOf(second)?.status).toBe('pending');
      const third = await call('c');
      expect(third.isError).toBe(true);
      expect(paymentOf(third)).toBeUndefined();
      expect(textOf(third)).toContain('unpaid payments open from callers without a session or sign-in');
      expect(textOf(third)).toContain('Nothing was charged');

      // The payment stays redeemable by its id from the next request (a bearer capability), and
      // paying it frees a place.
      await payAt(paymentOf(first)!.payment_url!);
      const done = (await client.callTool({
        name: 'confirm_payment',
        arguments: { payment_id: paymentOf(first)!.payment_id, method: null },
      })) as CallToolResult;
      expect(textOf(done)).toBe('report on a');
      expect(paymentOf(await call('d'))?.status).toBe('pending');
      expect(runs).toBe(2);
    } finally {
      await client.close();
    }
  });
});
