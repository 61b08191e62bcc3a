// Two router instances sharing one redis-server: a payment made through one instance is seen,
// confirmed and run exactly once through the other, and a status learned on one instance (webhook,
// return page) wakes the call waiting on the other through Redis pub/sub.
import type { ElicitRequest } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, vi } from 'vitest';
import type { Sandbox } from '../src/sandbox.js';
import type { PaymentStore } from '../src/store/types.js';
import { it, test } from './support/fixture.js';
import {
  connectUser,
  endpointsOf,
  type Instance,
  registerReportTool,
  startInstance,
  stripeAgentOf,
  type UserClient,
} from './support/instances.js';
import { paymentOf, textOf } from './support/paid-server.js';

let sandbox: Sandbox;
let A: Instance;
let B: Instance;
const open: UserClient[] = [];

/** Every run of the paid tool, on either instance (both run in this process). */
const runs: Array<{ instance: string; topic: string }> = [];
const runsOf = (topic: string) => runs.filter((r) => r.topic === topic);

/** Gives concurrent confirmations of one payment time to pile up on the claim while the tool runs. */
const SLOW_TOPICS = new Set(['crowd']);
/** Tools called with these topics run until the test opens their gate. */
const gates = new Map<string, Promise<void>>();

/** Holds the tool's runs for `topic` until the returned function is called. */
function gate(topic: string): () => void {
  let open = () => {};
  gates.set(
    topic,
    new Promise<void>((resolve) => {
      open = resolve;
    }),
  );
  return open;
}

/** The run lease of both instances: short, so a run can outlive its first lease term in a test. */
const LEASE_MS = 2000;

function tools(instance: string) {
  return (server: Parameters<typeof registerReportTool>[0]) =>
    registerReportTool(server, 'report', async (topic) => {
      runs.push({ instance, topic });
      if (SLOW_TOPICS.has(topic)) await new Promise((resolve) => setTimeout(resolve, 300));
      await gates.get(topic);
      return `report on ${topic} by ${instance}`;
    });
}

/** Status-change subscriptions B's router has taken: a call waiting on a busy claim takes one. */
let subscriptionsOnB = 0;

function countingSubscriptions(store: PaymentStore): PaymentStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'subscribe') {
        return (listener: Parameters<PaymentStore['subscribe']>[0]) => {
          subscriptionsOnB += 1;
          return target.subscribe(listener);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

// The redis-server and the sandbox are the fixture's (one per file, stopped after afterAll).
test.beforeAll(async ({ redis, sandbox: fileSandbox }) => {
  sandbox = fileSandbox;
  const endpoints = endpointsOf(sandbox);
  A = await startInstance({
    name: 'A',
    redisUrl: redis.url,
    sandbox: endpoints,
    tools: tools('A'),
    router: {
      leaseMs: LEASE_MS,
      timeouts: { choiceMs: 5000, paymentWaitMs: 10_000 },
      // A waiting call on A polls once when it starts and next after a minute, long past its
      // 10 s bound: if it ends with the tool's result, another instance woke it through Redis.
      // (Counting A's provider reads alone would not show that: a later poll reads the store
      // first and finds the news there without asking Stripe.)
      confirmation: { pendingTtlMs: 5000, poll: { initialMs: 60_000, maxMs: 60_000 } },
    },
  });
  B = await startInstance({
    name: 'B',
    redisUrl: redis.url,
    sandbox: endpoints,
    tools: tools('B'),
    wrapStore: countingSubscriptions,
    router: {
      leaseMs: LEASE_MS,
      timeouts: { choiceMs: 5000, paymentWaitMs: 10_000 },
      confirmation: { pendingTtlMs: 100, poll: { initialMs: 50, maxMs: 200 } },
    },
  });
});

test.afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => {})));
  await Promise.all([A?.close(), B?.close()]);
});

async function user(instance: Instance, name: string, options: Parameters<typeof connectUser>[2] = {}) {
  const client = await connectUser(instance.mcpUrl, name, options);
  open.push(client);
  return client;
}

/** The Checkout Session behind an intent, as the shared store has it. */
async function sessionOf(intentId: string): Promise<string> {
  const intent = await A.store.get(intentId);
  const sessionId = intent?.attempts.at(-1)?.paymentId;
  if (!sessionId) throw new Error(`intent ${intentId} has no provider payment`);
  return sessionId;
}

/** Status reads of one Checkout Session that the stand-in received from one instance. */
function readsBy(instance: Instance, sessionId: string): number {
  const agent = stripeAgentOf(instance.name);
  return sandbox.stripe.requests.entries.filter(
    (r) =>
      r.method === 'GET' &&
      r.path === `/v1/checkout/sessions/${sessionId}` &&
      (r.headers['user-agent'] ?? '').includes(agent),
  ).length;
}

function urlOf(elicitation: ElicitRequest['params'] | undefined): string {
  if (elicitation === undefined || !('url' in elicitation)) throw new Error('expected a URL elicitation');
  return elicitation.url;
}

/**
 * A URL-mode client on A starts a paid call and accepts the link without paying, so the call
 * waits on A. A has webhooks and return pages, so its waiting call does not poll: only a wake-up
 * from outside (or the store read at the start of the wait) can end it with the tool's result.
 */
async function callWaitingOnA(userName: string, topic: string) {
  const client = await user(A, userName, { elicitation: 'url', onElicit: () => ({ action: 'accept' }) });
  const result = client.call('report', { topic });
  await vi.waitFor(
    () => expect(client.elicitations, 'the payment link elicitation from A').not.toHaveLength(0),
    {
      timeout: 10_000,
      interval: 10,
    },
  );
  const link = urlOf(client.elicitations[0]);
  const intentId = /\/pay\/([^/?#]+)/.exec(link)?.[1] ?? '';
  // The method is settled (report takes only Stripe here): the link goes straight to its checkout.
  expect(link).toBe(`${A.publicUrl}/pay/${intentId}?method=stripe`);
  const sessionId = await sessionOf(intentId);
  return { client, result, intentId, sessionId };
}

describe('two instances, one Redis', () => {
  it('a Stripe webhook delivered to B wakes the call waiting on A, which runs the tool', async () => {
    const waiting = await callWaitingOnA('alice', 'webhook');
    sandbox.stripe.setWebhookTarget({ url: `${B.publicUrl}/webhooks/stripe` });
    try {
      sandbox.stripe.pay(waiting.sessionId);
      const result = await waiting.result;
      expect(result.isError, textOf(result)).toBeFalsy();
      expect(textOf(result)).toBe('report on webhook by A');
      expect(paymentOf(result)).toMatchObject({ payment_id: waiting.intentId, status: 'paid' });

      await sandbox.stripe.flushWebhooks();
      const deliveries = sandbox.stripe.webhookDeliveries.filter(
        (d) => d.type === 'checkout.session.completed',
      );
      expect(deliveries.map((d) => d.status)).toEqual([200]);
      // A read the session once, before it was paid; what it learned afterwards came through Redis.
      expect(readsBy(A, waiting.sessionId)).toBeLessThanOrEqual(1);
      expect(readsBy(B, waiting.sessionId)).toBe(0);
      expect(runsOf('webhook')).toEqual([{ instance: 'A', topic: 'webhook' }]);
    } finally {
      sandbox.stripe.setWebhookTarget(undefined);
    }
  });

  it('the return page served by B reads the status and wakes the call waiting on A', async () => {
    const waiting = await callWaitingOnA('amy', 'returning');
    const deliveriesBefore = sandbox.stripe.webhookDeliveries.length;
    sandbox.stripe.pay(waiting.sessionId);
    // No webhook target: only B's return page can tell the store.
    const page = await fetch(`${B.publicUrl}/return/${waiting.intentId}?outcome=success`);
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toContain('data-status="paid"');

    const result = await waiting.result;
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(textOf(result)).toBe('report on returning by A');
    expect(readsBy(B, waiting.sessionId)).toBe(1);
    expect(readsBy(A, waiting.sessionId)).toBeLessThanOrEqual(1);
    expect(sandbox.stripe.webhookDeliveries.length).toBe(deliveriesBefore);
    expect(runsOf('returning')).toEqual([{ instance: 'A', topic: 'returning' }]);
  });

  it('200 concurrent confirm_payment calls over both instances run the tool once and all get its result', async () => {
    const owner = await user(A, 'carol');
    const required = await owner.call('report', { topic: 'crowd' });
    const payment = paymentOf(required);
    expect(payment, textOf(required)).toMatchObject({ status: 'pending', provider: 'stripe' });
    const paymentId = payment!.payment_id;
    sandbox.stripe.pay(await sessionOf(paymentId));

    // Several sessions per instance, all the same user.
    const sessions = await Promise.all(
      Array.from({ length: 10 }, (_, i) => user(i % 2 === 0 ? A : B, 'carol')),
    );
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        sessions[i % sessions.length]!.call('confirm_payment', { payment_id: paymentId }),
      ),
    );

    expect(runsOf('crowd')).toHaveLength(1);
    const ranOn = runsOf('crowd')[0]!.instance;
    for (const result of results) {
      expect(result.isError, textOf(result)).toBeFalsy();
      expect(result.content).toEqual([{ type: 'text', text: `report on crowd by ${ranOn}` }]);
      expect(paymentOf(result)).toMatchObject({ payment_id: paymentId, status: 'paid' });
    }
    const stored = await B.store.get(paymentId);
    expect(stored).toMatchObject({ run: 'done', fence: 1, status: 'paid' });
  });

  it('a payment made through A is confirmed through B by the same user, and by nobody else', async () => {
    const danOnA = await user(A, 'dan');
    const required = await danOnA.call('report', { topic: 'roaming' });
    const paymentId = paymentOf(required)!.payment_id;
    expect(paymentOf(required)).toMatchObject({
      status: 'pending',
      payment_url: `${A.publicUrl}/pay/${paymentId}`,
    });
    sandbox.stripe.pay(await sessionOf(paymentId));

    const eveOnB = await user(B, 'eve');
    const stolen = await eveOnB.call('confirm_payment', { payment_id: paymentId });
    expect(stolen.isError).toBe(true);
    expect(textOf(stolen)).toContain(`Unknown payment_id "${paymentId}"`);
    expect(runsOf('roaming')).toHaveLength(0);

    const danOnB = await user(B, 'dan');
    const done = await danOnB.call('confirm_payment', { payment_id: paymentId });
    expect(done.isError, textOf(done)).toBeFalsy();
    expect(textOf(done)).toBe('report on roaming by B');
    expect(runsOf('roaming')).toEqual([{ instance: 'B', topic: 'roaming' }]);

    // Dan's paid call unlocks nothing for Eve: not his payment id, not the same call under her name.
    const again = await eveOnB.call('confirm_payment', { payment_id: paymentId });
    expect(textOf(again)).toContain(`Unknown payment_id "${paymentId}"`);
    const own = await eveOnB.call('report', { topic: 'roaming' });
    expect(paymentOf(own)).toMatchObject({ status: 'pending' });
    expect(paymentOf(own)!.payment_id).not.toBe(paymentId);
    expect(runsOf('roaming')).toHaveLength(1);
  });

  it('identical calls arriving at A and B at the same moment share one intent and one provider payment', async () => {
    const onA = await user(A, 'fay');
    const onB = await user(B, 'fay');
    const before = sandbox.stripe.listSessions().length;
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? onA : onB).call('report', { topic: 'twins' })),
    );
    const ids = new Set(results.map((r) => paymentOf(r)?.payment_id));
    expect(ids.size).toBe(1);
    expect(sandbox.stripe.listSessions().length - before).toBe(1);
    expect(runsOf('twins')).toHaveLength(0);
  });

  it('a tool still running on A past its lease is not run again by a confirmation on B', async () => {
    const openGate = gate('lengthy');
    const onA = await user(A, 'hank');
    const required = await onA.call('report', { topic: 'lengthy' });
    const paymentId = paymentOf(required)!.payment_id;
    sandbox.stripe.pay(await sessionOf(paymentId));

    const first = onA.call('confirm_payment', { payment_id: paymentId });
    try {
      await vi.waitFor(() => expect(runsOf('lengthy'), 'the tool to start on A').toHaveLength(1), {
        timeout: 10_000,
        interval: 10,
      });
      const claimed = await A.store.get(paymentId);
      expect(claimed).toMatchObject({ run: 'running', fence: 1 });
      // A is alive and its tool still runs after the lease term it took (before this moment) has passed.
      const leaseEnds = Date.now() + LEASE_MS;
      await vi.waitFor(() => expect(Date.now(), 'the lease term to pass').toBeGreaterThan(leaseEnds + 100), {
        timeout: LEASE_MS * 3,
        interval: 10,
      });

      const onB = await user(B, 'hank');
      const subscriptionsBefore = subscriptionsOnB;
      const second = onB.call('confirm_payment', { payment_id: paymentId });
      // B either takes the claim and runs the tool a second time (the bug) or waits on the claim.
      await vi.waitFor(
        () =>
          expect(
            runsOf('lengthy').length > 1 || subscriptionsOnB > subscriptionsBefore,
            'B to run the tool or wait for the running one',
          ).toBe(true),
        { timeout: 10_000, interval: 10 },
      );
      openGate();
      const [fromA, fromB] = await Promise.all([first, second]);
      expect(runsOf('lengthy')).toEqual([{ instance: 'A', topic: 'lengthy' }]);
      expect(textOf(fromA)).toBe('report on lengthy by A');
      expect(textOf(fromB)).toBe('report on lengthy by A');
    } finally {
      openGate();
      await first.catch(() => {});
    }
  });
});
