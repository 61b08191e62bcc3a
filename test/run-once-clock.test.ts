// Issue 11 item 6: run leases are timed on the store's clock. Instance B runs in its own process
// with its clock 6 minutes ahead (past the 5-minute lease); instance A, in this process, is running
// the paid tool. B must not take A's live run over: it waits for A's result instead.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import {
  type ChildInstance,
  connectUser,
  endpointsOf,
  type Instance,
  registerReportTool,
  spawnInstance,
  startInstance,
  type UserClient,
  waitUntil,
} from './support/instances.js';
import { paymentOf, textOf } from './support/paid-server.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';

const LEASE_MS = 5 * 60_000;
const SKEW_MS = 6 * 60_000;

let redis: RedisServer;
let sandbox: Sandbox;
let A: Instance;
let B: ChildInstance;
const open: UserClient[] = [];
const runsOnA: string[] = [];
let release = () => {};
const gate = new Promise<void>((resolve) => {
  release = resolve;
});

beforeAll(async () => {
  redis = await startRedisServer();
  sandbox = await startSandbox();
  const childB = spawnInstance({
    name: 'B',
    redisUrl: redis.url,
    sandbox: endpointsOf(sandbox),
    env: { LEASE_MS: String(LEASE_MS), CLOCK_OFFSET_MS: String(SKEW_MS), SIGNAL_WAITS: '1' },
    startTimeoutMs: 30_000,
  });
  childB.catch(() => {});
  A = await startInstance({
    name: 'A',
    redisUrl: redis.url,
    sandbox: endpointsOf(sandbox),
    router: { leaseMs: LEASE_MS },
    tools: (server) =>
      registerReportTool(server, 'quick_report', async (topic) => {
        runsOnA.push(topic);
        await gate;
        return `quick_report on ${topic} by A`;
      }),
  });
  B = await childB;
}, 60_000);

afterAll(async () => {
  release();
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => {})));
  await B?.kill();
  await A?.close();
  await sandbox?.close();
  await redis?.stop();
});

describe('run leases on the store clock', () => {
  it('an instance whose clock is 6 minutes ahead cannot take over a live run', async () => {
    const onA = await connectUser(A.mcpUrl, 'ivy');
    open.push(onA);
    const required = await onA.call('quick_report', { topic: 'skewed' });
    const paymentId = paymentOf(required)!.payment_id;
    const sessionId = (await A.store.get(paymentId))!.attempts.at(-1)!.paymentId;
    sandbox.stripe.pay(sessionId);

    const first = onA.call('confirm_payment', { payment_id: paymentId });
    await waitUntil(() => runsOnA.length === 1, 'the tool to start on A');

    const onB = await connectUser(B.mcpUrl, 'ivy');
    open.push(onB);
    const waitsBefore = B.signals().filter((s) => s === 'subscribed').length;
    const second = onB.call('confirm_payment', { payment_id: paymentId });
    // B either runs the tool itself (the bug) or waits on A's run.
    await waitUntil(
      () =>
        B.signals().includes('ran quick_report skewed') ||
        B.signals().filter((s) => s === 'subscribed').length > waitsBefore,
      `B to run the tool or wait for A's run\n${B.stderr()}`,
      20_000,
    );
    release();
    const [fromA, fromB] = await Promise.all([first, second]);
    expect(B.signals()).not.toContain('ran quick_report skewed');
    expect(runsOnA).toEqual(['skewed']);
    expect(textOf(fromA)).toBe('quick_report on skewed by A');
    expect(textOf(fromB)).toBe('quick_report on skewed by A');
  });
});
