// Issue 15 across instances: two routers on one redis-server race the last unit of a cap and
// admit one; a free allowance is shared; the ledger keeps and emits each entry once.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
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
  server.registerTool(
    'counted',
    {
      description: 'Three a day',
      inputSchema: { n: z.number() },
      price: { amount: '1.00', currency: 'EUR' },
      providers: ['stripe'],
      limits: { calls: [{ max: 3, per: 'day' }] },
    },
    async ({ n }) => ({ content: [{ type: 'text', text: `counted ${n}` }] }),
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

describe('edges of a cap and a quota across two instances on one Redis (one clock, moved by hand)', () => {
  let C: Instance;
  let D: Instance;
  let now = Date.UTC(2026, 11, 1, 23, 59, 59, 0);
  const clock = () => now;

  beforeAll(async () => {
    const endpoints = endpointsOf(sandbox);
    const edges: Omit<Partial<PayRouterOptions>, 'providers' | 'store' | 'publicUrl'> = {
      flow: 'two_step',
      limits: {
        // report costs 1.00: two a day per payer.
        spend: [{ max: '2.00', currency: 'USD', per: 'day' }],
        clock,
      },
    };
    C = await startInstance({ name: 'C', redisUrl: redis.url, sandbox: endpoints, tools, router: edges });
    D = await startInstance({ name: 'D', redisUrl: redis.url, sandbox: endpoints, tools, router: edges });
  });
  afterAll(async () => {
    await C?.close();
    await D?.close();
  });

  async function pair(user: string): Promise<[UserClient, UserClient]> {
    const p: [UserClient, UserClient] = [
      await connectUser(C.mcpUrl, user),
      await connectUser(D.mcpUrl, user),
    ];
    clients.push(...p);
    return p;
  }
  const race = (onC: UserClient, onD: UserClient, label: string, n: number) =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        (i % 2 === 0 ? onC : onD).call('report', { topic: `${label} ${i}` }),
      ),
    );
  const pendingOf = (results: Array<{ _meta?: Record<string, unknown> }>) =>
    results.filter((r) => paymentOf(r as never)?.status === 'pending');

  it('a refund on one instance gives the budget back on the other; a new day (UTC) gives it all back at 00:00', async () => {
    now = Date.UTC(2026, 11, 1, 23, 59, 59, 0);
    const [onC, onD] = await pair('ursula');
    const first = await race(onC, onD, 'day one', 6);
    const admitted = pendingOf(first);
    expect(admitted).toHaveLength(2);
    for (const r of first.filter((r) => limitOf(r) !== undefined))
      expect(limitOf(r)).toMatchObject({
        kind: 'spend',
        used: '2.00',
        limit: '2.00',
        resets_at: '2026-12-02T00:00:00.000Z',
      });

    // Paid through C, run on D, refunded on C: its 1.00 comes back for a call on D.
    const paid = paymentOf(admitted[0]!)!;
    const intent = await C.store.get(paid.payment_id);
    sandbox.stripe.pay(intent!.attempts.at(-1)!.paymentId);
    expect(textOf(await onD.call('confirm_payment', { payment_id: paid.payment_id }))).toContain('report on');
    expect(limitOf(await onD.call('report', { topic: 'before the refund' }))).toMatchObject({ used: '2.00' });
    expect((await C.router.refund(paid.payment_id, { reason: 'edge test' })).status).toBe('refunded');
    expect(paymentOf(await onD.call('report', { topic: 'after the refund' }))?.status).toBe('pending');
    expect(limitOf(await onC.call('report', { topic: 'no budget' }))).toMatchObject({ used: '2.00' });

    // The last millisecond of the day is still today; midnight UTC is a new period on both.
    now = Date.UTC(2026, 11, 1, 23, 59, 59, 999);
    expect(pendingOf(await race(onC, onD, 'late', 2))).toHaveLength(0);
    now = Date.UTC(2026, 11, 2, 0, 0, 0, 0);
    expect(pendingOf(await race(onC, onD, 'day two', 6))).toHaveLength(2);
  });

  it("a tool's call quota across both instances: the call that reaches it is admitted, the ones past it refused", async () => {
    now = Date.UTC(2026, 11, 5, 12, 0, 0, 0);
    const [onC, onD] = await pair('vera');
    // Priced in EUR: the USD spend cap does not count it, only its own quota (3 a day) does.
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? onC : onD).call('counted', { n: i })),
    );
    expect(pendingOf(results)).toHaveLength(3);
    const limited = results.filter((r) => limitOf(r) !== undefined);
    expect(limited).toHaveLength(5);
    for (const r of limited)
      expect(limitOf(r)).toMatchObject({
        kind: 'calls',
        tool: 'counted',
        limit: '3',
        used: '3',
        resets_at: '2026-12-06T00:00:00.000Z',
      });
    const sessions = sandbox.stripe.listSessions().filter((x) => x.currency === 'eur');
    expect(sessions).toHaveLength(3);
  });
});
