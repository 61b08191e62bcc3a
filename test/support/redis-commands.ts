// Redis commands per paid call, counted the way Redis itself counts them: `INFO commandstats`
// (each command a Lua script runs is counted too, besides the EVALSHA), over every instance
// sharing the server. Used by bench/redis-commands.ts and test/redis-commands.test.ts.
// No vitest imports: the bench loads this file too.
import { Redis } from 'ioredis';
import type { Sandbox } from '../../src/sandbox.js';
import {
  connectUser,
  endpointsOf,
  type Instance,
  registerReportTool,
  startInstance,
  type UserClient,
} from './instances.js';
import { paymentOf, textOf } from './paid-server.js';

/** Commands the measurement itself sends, left out of the count. */
const OWN_COMMANDS = new Set(['info', 'config|resetstat', 'config']);

/** `INFO commandstats` as `{ command: calls }` (Redis 7 names subcommands `config|resetstat`). */
export async function commandStats(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const counts = new Map<string, number>();
  for (const line of info.split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (match?.[1] !== undefined && match[2] !== undefined) counts.set(match[1], Number(match[2]));
  }
  return counts;
}

export interface CommandCount {
  calls: number;
  /** All commands over all instances, per two-step paid call. */
  perCall: number;
  /** Per command name, per paid call. */
  byCommand: Array<[string, number]>;
}

export interface TwoInstances {
  A: Instance;
  B: Instance;
  close(): Promise<void>;
}

/** Two router instances on one redis-server, each offering the Stripe-only `report` tool. */
export async function twoInstances(
  redisUrl: string,
  sandbox: Sandbox,
  store: { legacyKeys?: boolean } = {},
): Promise<TwoInstances> {
  const endpoints = endpointsOf(sandbox);
  const tools = (name: string) => (server: Parameters<typeof registerReportTool>[0]) =>
    registerReportTool(server, 'report', async (topic) => `report on ${topic} by ${name}`);
  const A = await startInstance({
    name: 'A',
    redisUrl,
    sandbox: endpoints,
    tools: tools('A'),
    redisStore: store,
  });
  const B = await startInstance({
    name: 'B',
    redisUrl,
    sandbox: endpoints,
    tools: tools('B'),
    redisStore: store,
  });
  return {
    A,
    B,
    close: async () => {
      await Promise.all([A.close(), B.close()]);
    },
  };
}

/**
 * `calls` two-step paid calls, each by its own user: the tool call on A (a Stripe Checkout
 * Session is created, the payment-required result comes back), the user pays, then
 * `confirm_payment` on B runs the tool. Counts every Redis command in between.
 */
export async function countTwoStepCommands(
  redisUrl: string,
  sandbox: Sandbox,
  instances: TwoInstances,
  calls: number,
): Promise<CommandCount> {
  const admin = new Redis(redisUrl, { connectionName: 'command-count' });
  const clients: UserClient[] = [];
  try {
    // Sessions first: connecting costs no Redis command, but keep it out of the window anyway.
    for (let i = 0; i < calls; i++) {
      const user = `counted${i}${Math.random().toString(36).slice(2, 8)}`;
      clients.push(await connectUser(instances.A.mcpUrl, user), await connectUser(instances.B.mcpUrl, user));
    }
    let lastPaymentId = '';
    await admin.config('RESETSTAT');
    for (let i = 0; i < calls; i++) {
      const [onA, onB] = [clients[2 * i]!, clients[2 * i + 1]!];
      const required = await onA.call('report', { topic: `counted ${i}` });
      const payment = paymentOf(required);
      if (payment?.status !== 'pending') throw new Error(`expected a pending payment: ${textOf(required)}`);
      lastPaymentId = payment.payment_id;
      const intent = await instances.A.store.get(payment.payment_id);
      const sessionId = intent?.attempts.at(-1)?.paymentId;
      if (sessionId === undefined) throw new Error('no Checkout Session recorded');
      sandbox.stripe.pay(sessionId);
      const done = await onB.call('confirm_payment', { payment_id: payment.payment_id });
      if (done.isError) throw new Error(`confirm_payment failed: ${textOf(done)}`);
    }
    const stats = await commandStats(admin);
    for (const name of OWN_COMMANDS) stats.delete(name);
    // The measurement's own store.get per call (to find the Checkout Session): measured alone, taken out.
    await admin.config('RESETSTAT');
    await instances.A.store.get(lastPaymentId);
    const own = await commandStats(admin);
    for (const name of OWN_COMMANDS) own.delete(name);
    for (const [name, count] of own) stats.set(name, (stats.get(name) ?? 0) - count * calls);
    const total = [...stats.values()].reduce((sum, n) => sum + n, 0);
    return {
      calls,
      perCall: total / calls,
      byCommand: [...stats.entries()]
        .filter(([, n]) => n !== 0)
        .sort((a, b) => b[1] - a[1])
        .map(([name, n]) => [name, n / calls]),
    };
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await admin.quit().catch(() => admin.disconnect());
  }
}
