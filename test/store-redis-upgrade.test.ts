// Records written by the redisStore of payrouter 0.1 (keys `<prefix>intent:<id>`, `<prefix>binding:…`,
// `<prefix>payment:…`, ids without a slot tag, expiries set with PEXPIREAT) survive the upgrade: a
// paid intent whose tool had not run yet still runs, once, through the new store.
import { randomBytes } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { canonicalJson, sha256Hex } from '../src/core/canonical-json.js';
import { type IntentRecord, PayRouter, redisStore } from '../src/index.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { bindingKey } from '../src/store/index.js';
import { connectClient, paymentOf, textOf } from './support/paid-server.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';

let server: RedisServer;
let sandbox: Sandbox;

beforeAll(async () => {
  server = await startRedisServer();
  sandbox = await startSandbox();
});

afterAll(async () => {
  await sandbox?.close();
  await server?.stop();
});

/** A paid, not yet run intent exactly as payrouter 0.1 stored it, written by hand. */
async function writeOldIntent(redis: Redis, prefix: string, topic: string): Promise<IntentRecord> {
  const now = Date.now();
  const id = `pay_${randomBytes(18).toString('base64url')}`;
  const record: IntentRecord = {
    id,
    version: 4,
    binding: {
      tool: 'report',
      argsHash: sha256Hex(canonicalJson({ topic })),
      amount: 100,
      currency: 'USD',
      subject: 'custom:lee',
    },
    argsJson: canonicalJson({ topic }),
    description: 'Paid report',
    status: 'paid',
    eligible: ['stripe'],
    attempts: [
      {
        providerId: 'stripe',
        paymentId: `cs_old_${topic}`,
        url: 'https://checkout.example/old',
        status: 'paid',
        rawStatus: 'complete/paid',
        idempotencyKey: `payrouter_${id}_1_stripe`,
        createdAt: now - 60_000,
        expiresAt: now + 3_600_000,
      },
    ],
    run: 'unused',
    fence: 0,
    runErrors: [],
    createdAt: now - 60_000,
    updatedAt: now - 30_000,
    expiresAt: now + 30 * 24 * 3_600_000,
  };
  const expiry = String(record.expiresAt);
  for (const [key, value] of [
    [`${prefix}intent:${id}`, JSON.stringify(record)],
    [`${prefix}binding:${bindingKey(record.binding)}`, id],
    [`${prefix}payment:stripe:cs_old_${topic}`, id],
  ] as const) {
    await redis.set(key, value);
    await redis.pexpireat(key, expiry);
  }
  return record;
}

describe('redisStore upgrade from 0.1 keys', () => {
  it('runs a paid-but-unrun intent written by the old store, found by id or by its binding, once', async () => {
    const redis = new Redis(server.url);
    const prefix = 'payrouter:';
    const byBinding = await writeOldIntent(redis, prefix, 'retried');
    const byId = await writeOldIntent(redis, prefix, 'confirmed');

    const store = redisStore({ client: redis });
    const mcp = new McpServer({ name: 'upgraded', version: '1.0.0' });
    const router = new PayRouter(mcp, {
      providers: [sandbox.providers().stripe],
      store,
      flow: 'two_step',
      subject: () => 'lee',
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    const runs: string[] = [];
    mcp.registerTool(
      'report',
      {
        description: 'Paid report',
        inputSchema: { topic: z.string() },
        price: { amount: '1.00', currency: 'USD' },
      },
      async ({ topic }) => {
        runs.push(topic);
        return { content: [{ type: 'text', text: `report on ${topic}` }] };
      },
    );
    const { client, close } = await connectClient(mcp, { elicitation: 'none' });
    const call = (name: string, args: Record<string, unknown>) =>
      client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
    try {
      // The same call again (a client retrying after the upgrade): the old binding finds the payment.
      const retried = await call('report', { topic: 'retried' });
      expect(textOf(retried)).toBe('report on retried');
      expect(paymentOf(retried)).toMatchObject({ payment_id: byBinding.id, status: 'paid' });
      // confirm_payment with an old id.
      const confirmed = await call('confirm_payment', { payment_id: byId.id });
      expect(textOf(confirmed)).toBe('report on confirmed');
      // Once each: asking again hands out the stored result.
      expect(textOf(await call('confirm_payment', { payment_id: byId.id }))).toBe('report on confirmed');
      // The retried call's result was delivered: the same call now is a new call, a new payment.
      const anew = await call('report', { topic: 'retried' });
      expect(paymentOf(anew)).toMatchObject({ status: 'pending' });
      expect(paymentOf(anew)?.payment_id).not.toBe(byBinding.id);
      expect(runs).toEqual(['retried', 'confirmed']);
      expect(await store.findByPayment('stripe', 'cs_old_confirmed')).toMatchObject({
        id: byId.id,
        run: 'done',
      });
      // The old record stayed under its old key, with a relative expiry.
      expect(await redis.pttl(`${prefix}intent:${byId.id}`)).toBeGreaterThan(0);
    } finally {
      await close();
      await router.close();
      await store.close();
      await redis.quit();
    }
  });
});
