// Issue 15 across instances: two routers on one redis-server race the last unit of a cap and
// admit one; a free allowance is shared; the ledger keeps and emits each entry once.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEntry, PayRouterOptions } from '../src/index.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import {
  connectUser,
  endpointsOf,
  type Instance,
  registerReportTool,
  startInstance,
  type UserClient,
} from './support/instances.js';
import { paymentOf, textOf } from './support/paid-server.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';

let redis: RedisServer;
let sandbox: Sandbox;
const entries: LedgerEntry[] = [];
let A: Instance;
let B: Instance;
const clients: UserClient[] = [];

const router: Omit<Partial<PayRouterOptions>, 'providers' | 'store' | 'publicUrl'> = {
  flow: 'two_step',
  limits: {
    // report costs 1.00: three per user per day, and five over all users.
    spend: [
      { max: '3.00', currency: 'USD', per: 'day' },
      { max: '5.00', currency: 'USD', per: 'day', scope: 'global' },
    ],
  },
  hooks: { onLedgerEntry: (e) => void entries.push(e) },
};

const tools = (server: McpServer) => {
  registerReportTool(server, 'report', async (topic) => `report on ${topic}`);
  server.registerTool(
    'sample',
    {
      description: 'A free sample a day, then paid',
      price: { amount: '1.00', currency: 'USD' },
      providers: ['stripe'],
      limits: { free: { calls: 1, per: 'day' } },
    },
    async () => ({ content: [{ type: 'text', text: 'sample' }] }),
  );
};

beforeAll(async () => {
  redis = await startRedisServer();
  sandbox = await startSandbox();
  const endpoints = endpointsOf(sandbox);
  A = await startInstance({ name: 'A', redisUrl: redis.url, sandbox: endpoints, tools, router });
  B = await startInstance({ name: 'B', redisUrl: redis.url, sandbox: endpoints, tools, router });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await A?.close();
  await B?.close();
  await sandbox?.close();
  await redis?.stop();
});

async function both(user: string): Promise<[UserClient, UserClient]> {
  const pair: [UserClient, UserClient] = [
    await connectUser(A.mcpUrl, user),
    await connectUser(B.mcpUrl, user),
  ];
  clients.push(...pair);
  return pair;
}

const limitOf = (r: { _meta?: Record<string, unknown> }) =>
  r._meta?.['payrouter/limit'] as Record<string, unknown> | undefined;

describe('limits across two instances on one Redis', () => {
  it('racing calls on both instances: exactly the cap is admitted, every other call gets the limit answer', async () => {
    const [onA, onB] = await both('racer');
    const calls = Array.from({ length: 12 }, (_, i) =>
      (i % 2 === 0 ? onA : onB).call('report', { topic: `race ${i}` }),
    );
    const results = await Promise.all(calls);
    const pending = results.filter((r) => paymentOf(r)?.status === 'pending');
    const limited = results.filter((r) => limitOf(r) !== undefined);
    expect(pending).toHaveLength(3);
    expect(limited).toHaveLength(9);
    for (const r of limited)
      expect(limitOf(r)).toMatchObject({ kind: 'spend', scope: 'subject', used: '3.00' });
    const sessions = sandbox.stripe.listSessions().filter((s) => s.amount_total === 100);
    expect(sessions).toHaveLength(3);
  });

  it('the global cap over all users: two users racing the last two units on both instances get two', async () => {
    const [x1, x2] = await both('xavier');
    const [y1, y2] = await both('yusuf');
    // 3.00 held by racer; 2.00 left over all users.
    const results = await Promise.all([
      x1.call('report', { topic: 'x1' }),
      y2.call('report', { topic: 'y2' }),
      x2.call('report', { topic: 'x2' }),
      y1.call('report', { topic: 'y1' }),
    ]);
    expect(results.filter((r) => paymentOf(r)?.status === 'pending')).toHaveLength(2);
    const limited = results.filter((r) => limitOf(r) !== undefined);
    expect(limited).toHaveLength(2);
    for (const r of limited)
      expect(limitOf(r)).toMatchObject({ scope: 'global', used: '5.00', limit: '5.00' });
  });

  it('a free allowance raced on both instances is used once; the ledger keeps and emits each entry once', async () => {
    const [onA, onB] = await both('zoe');
    const results = await Promise.all([onA.call('sample', {}), onB.call('sample', {})]);
    const free = results.filter((r) => textOf(r) === 'sample');
    expect(free).toHaveLength(1);
    const ledger = await B.router.ledger.list({ subject: 'user:zoe' });
    expect(ledger.filter((e) => e.kind === 'free')).toHaveLength(1);
    expect(ledger.filter((e) => e.kind === 'run')).toHaveLength(1);
    const emitted = entries.filter((e) => e.subject === 'user:zoe');
    expect(emitted.map((e) => e.id).sort()).toEqual(ledger.map((e) => e.id).sort());
    expect(await A.router.ledger.list({ subject: 'user:zoe' })).toEqual(ledger);
  });
});
