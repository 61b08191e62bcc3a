// redisStore on a real Redis Cluster (three masters): every key one command or script names lies
// in one hash slot, so the whole store contract (two instances on one prefix) and a paid call
// started on one router and run on another hold there as on a single server.
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type PaymentStore, PayRouter, redisStore } from '../src/index.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { connectClient, paymentOf, textOf } from './support/paid-server.js';
import { type RedisCluster, startRedisCluster } from './support/redis-server.js';
import { describeStoreContract } from './support/store-contract.js';

let cluster: RedisCluster;
const opened: { clients: Cluster[]; stores: PaymentStore[]; closers: Array<() => Promise<unknown>> } = {
  clients: [],
  stores: [],
  closers: [],
};

function clusterClient(): Cluster {
  const client = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 2 } });
  opened.clients.push(client);
  return client;
}

function store(prefix: string): PaymentStore {
  const created = redisStore({ client: clusterClient(), prefix });
  opened.stores.push(created);
  return created;
}

async function closeOpened(): Promise<void> {
  await Promise.all(opened.closers.splice(0).map((close) => close()));
  await Promise.all(opened.stores.splice(0).map((s) => s.close()));
  await Promise.all(opened.clients.splice(0).map((c) => c.quit()));
}

beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);

afterEach(closeOpened);

afterAll(async () => {
  await cluster?.stop();
});

describeStoreContract('redisStore on a Redis Cluster', async () => {
  const prefix = `t-${randomUUID()}:`;
  const [a, b] = [store(prefix), store(prefix)];
  // A new Cluster client queues its first commands until it has found the nodes: done here, not
  // inside a test that times an expiry to within a few milliseconds.
  await Promise.all([a.get('pay_warm_up'), b.get('pay_warm_up')]);
  // Two instances' publishes enter at different nodes: they may arrive in either order.
  return { store: a, other: b, orderedAcrossInstances: false, cleanup: closeOpened };
});

describe('two routers on one Redis Cluster', () => {
  let sandbox: Sandbox;
  beforeAll(async () => {
    sandbox = await startSandbox();
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  async function instance(prefix: string, runs: string[]) {
    const server = new McpServer({ name: 'cluster', version: '1.0.0' });
    const router = new PayRouter(server, {
      providers: [sandbox.providers().stripe],
      store: store(prefix),
      flow: 'two_step',
      subject: () => 'carol',
      limits: {
        spend: [
          { max: '3.00', currency: 'USD', per: 'day' },
          { max: '10.00', currency: 'USD', per: 'day', scope: 'global' },
        ],
        calls: [{ max: 20, per: { rollingMs: 3_600_000 } }],
      },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    opened.closers.push(() => router.close());
    server.registerTool(
      'report',
      {
        description: 'A report',
        inputSchema: { topic: z.string() },
        price: { amount: '1.00', currency: 'USD' },
      },
      async ({ topic }) => {
        runs.push(topic);
        return { content: [{ type: 'text', text: `report on ${topic}` }] };
      },
    );
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    opened.closers.push(close);
    const call = (name: string, args: Record<string, unknown>) =>
      client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
    return { call, router };
  }

  it('a payment opened on A is confirmed and run once on B, recorded once, and the caps hold across both', async () => {
    const prefix = `t-${randomUUID()}:`;
    const runs: string[] = [];
    const A = await instance(prefix, runs);
    const B = await instance(prefix, runs);

    const required = await A.call('report', { topic: 'tides' });
    const payment = paymentOf(required)!;
    expect(payment.status).toBe('pending');
    // The same call on B resumes A's payment: one binding index, whichever node holds it.
    expect(paymentOf(await B.call('report', { topic: 'tides' }))?.payment_id).toBe(payment.payment_id);
    sandbox.stripe.pay(payment.provider_payment_id!);
    const [onA, onB] = await Promise.all([
      A.call('confirm_payment', { payment_id: payment.payment_id }),
      B.call('confirm_payment', { payment_id: payment.payment_id }),
    ]);
    expect([textOf(onA), textOf(onB)]).toEqual(['report on tides', 'report on tides']);
    expect(runs).toEqual(['tides']);

    const subject = 'custom:carol';
    const kinds = (await B.router.ledger.list({ subject }))
      .filter((e) => e.intentId === payment.payment_id)
      .map((e) => e.kind);
    expect(kinds).toEqual(['payment', 'paid', 'run']);
    expect((await A.router.ledger.list({ subject })).length).toBe(3);

    // 1.00 spent of the payer's 3.00 a day: two more open, the fourth is refused, on either router.
    expect(paymentOf(await A.call('report', { topic: 'a' }))?.status).toBe('pending');
    expect(paymentOf(await B.call('report', { topic: 'b' }))?.status).toBe('pending');
    const refused = await A.call('report', { topic: 'c' });
    expect(paymentOf(refused)).toBeUndefined();
    expect(refused._meta?.['payrouter/limit']).toMatchObject({
      kind: 'spend',
      scope: 'subject',
      used: '3.00',
    });
  });
});
