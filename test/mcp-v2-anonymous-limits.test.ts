// Anonymous stateless callers on the v2 path (protocol 2026-07-28, no session, no sign-in) are a
// new payer on every request, so a per-payer bound alone would never stop them: their unpaid
// payments are also bounded per tool across all of them (limits.openPerToolAnonymous), atomically
// in the store, on memoryStore and on a real redis-server.
import type { CallToolResult } from '@modelcontextprotocol/client';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  memoryStore,
  PAYMENT_META_KEY,
  type PaymentInfo,
  type PaymentStore,
  PayRouter,
  redisStore,
  silentLogger,
} from '../src/index.js';
import { installV2 } from '../src/mcp-v2.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { payAt, textOf } from './support/paid-server.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';
import { connectV2, inProcessFetch, userAuth } from './support/v2-world.js';

let sandbox: Sandbox;
let redisServer: RedisServer;
const clients: Redis[] = [];

beforeAll(async () => {
  sandbox = await startSandbox();
  redisServer = await startRedisServer();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await redisServer?.stop();
  await sandbox?.close();
});

const stores: Array<[string, () => PaymentStore]> = [
  ['memoryStore', () => memoryStore()],
  [
    'redisStore',
    () => {
      const client = new Redis(redisServer.url);
      clients.push(client);
      return redisStore({ client, prefix: `anon-${clients.length}:` });
    },
  ],
];

const paymentOf = (r: CallToolResult) => r._meta?.[PAYMENT_META_KEY] as PaymentInfo | undefined;

describe.each(stores)('open payments of anonymous stateless callers, per tool (%s)', (_name, makeStore) => {
  async function world(shared?: PaymentStore, limits: Record<string, unknown> = {}) {
    const store = shared ?? makeStore();
    const router = new PayRouter({
      providers: [sandbox.providers({ logger: silentLogger }).stripe],
      store,
      logger: silentLogger,
      requestStateKey: 'anonymous-limits-key-0123456789abcdef0123',
      limits: { openPerToolAnonymous: 2, ...limits },
    });
    let signedIn: string | undefined;
    const handler = createMcpHandler(() => {
      const server = installV2(router, new McpServer({ name: 'anon-limits', version: '1.0.0' }));
      for (const name of ['report', 'chart']) {
        server.registerTool(
          name,
          { inputSchema: z.object({ topic: z.string() }), price: { amount: '1.00', currency: 'USD' } },
          async ({ topic }) => ({ content: [{ type: 'text', text: `${name} on ${topic}` }] }),
        );
      }
      return server;
    });
    const user = await connectV2(
      inProcessFetch(handler, () => (signedIn ? userAuth(signedIn) : undefined)),
      { elicitation: 'none' },
    );
    const call = async (name: string, topic: string) =>
      (await user.client.callTool({ name, arguments: { topic } })) as CallToolResult;
    const confirm = async (paymentId: string) =>
      (await user.client.callTool({
        name: 'confirm_payment',
        arguments: { payment_id: paymentId, method: null },
      })) as CallToolResult;
    return {
      call,
      confirm,
      signIn: (sub: string | undefined) => {
        signedIn = sub;
      },
      async close() {
        await user.close();
        await handler.close();
        await router.close();
        if (!shared) await store.close();
      },
    };
  }

  it('refuses the next open past the per-tool bound, clearly and charging nothing; paying one frees a place', async () => {
    const w = await world();
    try {
      const first = await w.call('report', 'a');
      const second = await w.call('report', 'b');
      expect(paymentOf(first)?.status).toBe('pending');
      expect(paymentOf(second)?.status).toBe('pending');

      // Every request is a new anonymous payer, yet the third unpaid payment of this tool is refused.
      const third = await w.call('report', 'c');
      expect(third.isError).toBe(true);
      expect(paymentOf(third)).toBeUndefined();
      expect(textOf(third)).toContain(
        '"report" has 2 unpaid payments open from callers without a session or sign-in',
      );
      expect(textOf(third)).toContain('Nothing was charged');

      // Per tool: another tool still opens; a signed-in payer is bounded as itself only.
      expect(paymentOf(await w.call('chart', 'a'))?.status).toBe('pending');
      w.signIn('erin');
      expect(paymentOf(await w.call('report', 'c'))?.status).toBe('pending');
      w.signIn(undefined);

      // A paid payment is no longer open: its place goes to the next anonymous caller.
      await payAt(paymentOf(first)!.payment_url!);
      expect(textOf(await w.confirm(paymentOf(first)!.payment_id))).toBe('report on a');
      expect(paymentOf(await w.call('report', 'd'))?.status).toBe('pending');
      expect((await w.call('report', 'e')).isError).toBe(true);
    } finally {
      await w.close();
    }
  });

  it('shares a free allowance among anonymous stateless callers of a tool, instead of one per request', async () => {
    const w = await world(undefined, { free: { calls: 1, per: 'day' } });
    try {
      // The first anonymous call of the day is free...
      expect(textOf(await w.call('report', 'a'))).toBe('report on a');
      // ...and the next one, though it comes as a new payer, is not: the allowance was the tool's
      // anonymous callers' together, not one per request.
      const second = await w.call('report', 'b');
      expect(paymentOf(second)?.status).toBe('pending');
      // A signed-in payer has an allowance of their own.
      w.signIn('erin');
      expect(textOf(await w.call('report', 'c'))).toBe('report on c');
      w.signIn(undefined);
    } finally {
      await w.close();
    }
  });

  it('holds the bound atomically: parallel anonymous calls through two routers sharing the store open exactly two', async () => {
    const store = makeStore();
    const [one, two] = await Promise.all([world(store), world(store)]);
    try {
      const results = await Promise.all(
        ['a', 'b', 'c', 'd', 'e', 'f'].map((topic, i) => (i % 2 === 0 ? one : two).call('report', topic)),
      );
      const opened = results.filter((r) => paymentOf(r)?.status === 'pending');
      const refused = results.filter((r) => textOf(r).includes('unpaid payments open from callers without'));
      expect(opened).toHaveLength(2);
      expect(refused).toHaveLength(4);
    } finally {
      await Promise.all([one.close(), two.close()]);
      await store.close();
    }
  });
});
