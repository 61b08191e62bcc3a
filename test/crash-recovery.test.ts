// An instance that dies mid-call: instance A runs in a child process (test/fixtures/instance.ts)
// and is SIGKILLed; instance B, in this process, shares its redis-server and sandbox. B takes a
// crashed run over once A's lease runs out, and hands out a result A stored before it died
// instead of running the tool again.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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

/** The run lease of both instances: short, so a takeover happens within the test. */
const LEASE_MS = 1500;

let redis: RedisServer;
let sandbox: Sandbox;
let B: Instance;
/** Started together up front: a child takes seconds to boot (tsx compiles the library). */
let plainA: Promise<ChildInstance> | undefined;
let holdingA: Promise<ChildInstance> | undefined;
let refundingA: Promise<ChildInstance> | undefined;
const open: UserClient[] = [];

/** Runs of B's tools (B is in this process; A's runs are reported by its signals). */
const runsOnB: Array<{ tool: string; topic: string }> = [];
const runsOf = (topic: string) => runsOnB.filter((r) => r.topic === topic);

beforeAll(async () => {
  redis = await startRedisServer();
  sandbox = await startSandbox();
  B = await startInstance({
    name: 'B',
    redisUrl: redis.url,
    sandbox: endpointsOf(sandbox),
    router: { leaseMs: LEASE_MS },
    tools: (server) => {
      for (const tool of ['slow_report', 'quick_report', 'failing_report']) {
        registerReportTool(server, tool, async (topic) => {
          runsOnB.push({ tool, topic });
          return `${tool} on ${topic} by B`;
        });
      }
    },
  });
  plainA = startA();
  holdingA = startA({ HOLD_AFTER_STORE: '1' });
  refundingA = startA({ HOLD_BEFORE_REFUND: '1' });
  // Observed by the tests (and afterAll); this only keeps a failed start from going unhandled.
  plainA.catch(() => {});
  holdingA.catch(() => {});
  refundingA.catch(() => {});
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => {})));
});

afterAll(async () => {
  await Promise.all(
    [plainA, holdingA, refundingA].map((child) =>
      child?.then(
        (c) => c.kill(),
        () => {},
      ),
    ),
  );
  await B?.close();
  await sandbox?.close();
  await redis?.stop();
});

function startA(env: Record<string, string> = {}): Promise<ChildInstance> {
  return spawnInstance({
    name: 'A',
    redisUrl: redis.url,
    sandbox: endpointsOf(sandbox),
    env: { LEASE_MS: String(LEASE_MS), ...env },
  });
}

async function user(mcpUrl: string, name: string): Promise<UserClient> {
  const client = await connectUser(mcpUrl, name);
  open.push(client);
  return client;
}

/** Start a paid call on `client` (a payment-required result) and pay its Checkout Session. */
async function paidCall(client: UserClient, tool: string, topic: string): Promise<string> {
  const required = await client.call(tool, { topic });
  const payment = paymentOf(required);
  expect(payment, textOf(required)).toMatchObject({ status: 'pending', provider: 'stripe' });
  const intent = await B.store.get(payment!.payment_id);
  sandbox.stripe.pay(intent!.attempts.at(-1)!.paymentId);
  return payment!.payment_id;
}

/**
 * confirm_payment on the doomed instance, left running: its answer never comes (the process dies
 * first), which `settled` records.
 */
function confirmOnDoomed(client: UserClient, paymentId: string) {
  const state: { settled: boolean; result?: CallToolResult } = { settled: false };
  client.call('confirm_payment', { payment_id: paymentId }).then(
    (result) => {
      state.settled = true;
      state.result = result;
    },
    () => {
      state.settled = true;
    },
  );
  return state;
}

describe('an instance killed mid-call', () => {
  it('B takes over a run whose instance died once the lease runs out; the tool completes once', async () => {
    const A = await plainA!;
    const topic = 'takeover';
    const onA = await user(A.mcpUrl, 'frank');
    const paymentId = await paidCall(onA, 'slow_report', topic);

    const doomed = confirmOnDoomed(onA, paymentId);
    await A.waitForSignal(`started slow_report ${topic}`);
    const running = await B.store.get(paymentId);
    expect(running).toMatchObject({ status: 'paid', run: 'running', fence: 1 });
    await A.kill();

    // Same user, other instance: B waits out A's lease, claims with a higher fence, runs the tool.
    const onB = await user(B.mcpUrl, 'frank');
    const done = await onB.call('confirm_payment', { payment_id: paymentId });
    expect(done.isError, textOf(done)).toBeFalsy();
    expect(textOf(done)).toBe(`slow_report on ${topic} by B`);
    expect(runsOf(topic)).toEqual([{ tool: 'slow_report', topic }]);
    expect(await B.store.get(paymentId)).toMatchObject({ run: 'done', fence: 2 });
    // A started the tool but never finished it, and its caller never got an answer.
    expect(A.signals()).toContain(`started slow_report ${topic}`);
    expect(A.signals()).not.toContain(`finished slow_report ${topic}`);
    expect(doomed.result).toBeUndefined();

    // The result is stored: confirming again returns it without another run.
    const again = await onB.call('confirm_payment', { payment_id: paymentId });
    expect(textOf(again)).toBe(`slow_report on ${topic} by B`);
    expect(runsOf(topic)).toHaveLength(1);
  });

  it('a result A stored before it died is returned by B, and B never runs the tool', async () => {
    const A = await holdingA!;
    const topic = 'stored';
    const onA = await user(A.mcpUrl, 'grace');
    const paymentId = await paidCall(onA, 'quick_report', topic);

    // A runs the tool, stores the result, then freezes before answering; it is killed there.
    const doomed = confirmOnDoomed(onA, paymentId);
    await A.waitForSignal(`stored ${paymentId}`);
    await A.kill();
    expect(A.signals()).toEqual([`ran quick_report ${topic}`, `stored ${paymentId}`]);
    expect(doomed.result).toBeUndefined();

    const onB = await user(B.mcpUrl, 'grace');
    // The user never got that answer; retrying the same call hands over the stored result rather
    // than asking for a second payment.
    const retried = await onB.call('quick_report', { topic });
    expect(retried.isError, textOf(retried)).toBeFalsy();
    expect(textOf(retried)).toBe(`quick_report on ${topic} by A`);
    expect(paymentOf(retried)).toMatchObject({ payment_id: paymentId, status: 'paid' });

    const done = await onB.call('confirm_payment', { payment_id: paymentId });
    expect(done.isError, textOf(done)).toBeFalsy();
    expect(textOf(done)).toBe(`quick_report on ${topic} by A`);
    expect(paymentOf(done)).toMatchObject({ payment_id: paymentId, status: 'paid' });
    expect(runsOf(topic)).toEqual([]);
    expect(await B.store.get(paymentId)).toMatchObject({ run: 'done', fence: 1, resultDelivered: true });
  });

  it("a refund A decided but never made is made by B's sweep once A's lease has run out, once and recorded once; the payer then sees it refunded", async () => {
    const A = await refundingA!;
    const onA = await user(A.mcpUrl, 'heidi');
    // Two payments whose failed runs A ends with the refund decided; A freezes in each right after
    // that write, before asking Stripe, and then dies.
    const stuck: Array<{ topic: string; paymentId: string; sessionId: string }> = [];
    for (const topic of ['refund-by-confirm', 'refund-by-call']) {
      const paymentId = await paidCall(onA, 'failing_report', topic);
      const sessionId = (await B.store.get(paymentId))!.attempts.at(-1)!.paymentId;
      const doomed = confirmOnDoomed(onA, paymentId);
      await A.waitForSignal(`refunding ${paymentId}`);
      expect(doomed.result).toBeUndefined();
      stuck.push({ topic, paymentId, sessionId });
    }
    await A.kill();
    for (const { topic, paymentId, sessionId } of stuck) {
      expect(A.signals()).toContain(`failed failing_report ${topic}`);
      expect(await B.store.get(paymentId)).toMatchObject({ status: 'paid', run: 'refunding' });
      expect(sandbox.stripe.getRefunds(sessionId)).toHaveLength(0);
    }

    // Nobody touches the payments: B, which noted nothing itself, finds both refunds in the store
    // and makes them once A's lease has run out on Redis's clock.
    for (const { paymentId, sessionId } of stuck) {
      await waitUntil(
        async () => sandbox.stripe.getRefunds(sessionId).length === 1,
        `B's sweep to refund ${paymentId}`,
      );
      await waitUntil(
        async () => (await B.store.get(paymentId))?.run === 'refunded',
        `${paymentId} to be settled refunded`,
      );
    }
    const [byConfirm, byCall] = stuck as [(typeof stuck)[0], (typeof stuck)[0]];
    const onB = await user(B.mcpUrl, 'heidi');
    // The payer confirms on B: refunded, nothing run, nothing refunded again.
    const confirmed = await onB.call('confirm_payment', { payment_id: byConfirm.paymentId });
    expect(paymentOf(confirmed), textOf(confirmed)).toMatchObject({
      payment_id: byConfirm.paymentId,
      status: 'refunded',
    });
    // The same call made again after its refund is a new purchase, as after any refund.
    const called = await onB.call('failing_report', { topic: byCall.topic });
    expect(paymentOf(called), textOf(called)).toMatchObject({ status: 'pending' });
    expect(paymentOf(called)?.payment_id).not.toBe(byCall.paymentId);

    for (const { topic, paymentId, sessionId } of stuck) {
      expect(await B.store.get(paymentId)).toMatchObject({ status: 'refunded', run: 'refunded' });
      expect(sandbox.stripe.getRefunds(sessionId)).toHaveLength(1);
      // Asked again: nothing more is refunded or run.
      await onB.call('confirm_payment', { payment_id: paymentId });
      expect(sandbox.stripe.getRefunds(sessionId)).toHaveLength(1);
      expect(runsOf(topic)).toEqual([]);
      const subject = (await B.store.get(paymentId))!.binding.subject;
      const entries = await B.router.ledger.list({ subject });
      expect(entries.filter((e) => e.intentId === paymentId && e.kind === 'refund')).toHaveLength(1);
    }
    expect(await B.store.refundsToSettle?.(10)).toEqual([]);
  });
});
