// confirm_payment claims the run in the same compare-and-set that records `paid` (engine/run-once.ts
// `paidClaim`), over two instances on one redis-server: a payment confirmed on both at once still
// runs once, is announced paid once (onPaid, ledger `paid`), and a busy run lease falls back to
// the claim of its own.
import { describe, expect } from 'vitest';
import type { Sandbox } from '../src/sandbox.js';
import type { UsageStore } from '../src/store/types.js';
import { it, test } from './support/fixture.js';
import {
  connectUser,
  endpointsOf,
  type Instance,
  registerReportTool,
  startInstance,
  type UserClient,
} from './support/instances.js';
import { paymentOf, textOf } from './support/paid-server.js';

let sandbox: Sandbox;
let A: Instance;
let B: Instance;
const open: UserClient[] = [];
const runs: Array<{ instance: string; topic: string }> = [];
const paidEvents: Array<{ instance: string; intentId: string }> = [];

function instance(name: string, redisUrl: string) {
  return startInstance({
    name,
    redisUrl,
    sandbox: endpointsOf(sandbox),
    tools: (server) =>
      registerReportTool(server, 'report', async (topic) => {
        runs.push({ instance: name, topic });
        // Long enough for the other confirmation to arrive while this one runs.
        await new Promise((resolve) => setTimeout(resolve, 100));
        return `report on ${topic} by ${name}`;
      }),
    router: {
      leaseMs: 2000,
      hooks: {
        onPaid: (event) => {
          paidEvents.push({ instance: name, intentId: event.intentId });
        },
      },
    },
  });
}

test.beforeAll(async ({ redis, sandbox: fileSandbox }) => {
  sandbox = fileSandbox;
  A = await instance('A', redis.url);
  B = await instance('B', redis.url);
});

test.afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => {})));
  await Promise.all([A?.close(), B?.close()]);
});

async function user(on: Instance, name: string) {
  const client = await connectUser(on.mcpUrl, name);
  open.push(client);
  return client;
}

/** A payment opened on A and paid at Stripe, not confirmed anywhere yet. */
async function paidOnA(name: string, topic: string) {
  const required = await (await user(A, name)).call('report', { topic });
  const payment = paymentOf(required);
  if (payment?.status !== 'pending') throw new Error(`expected a pending payment: ${textOf(required)}`);
  const intent = await A.store.get(payment.payment_id);
  const sessionId = intent?.attempts.at(-1)?.paymentId;
  if (intent === undefined || sessionId === undefined) throw new Error('no Checkout Session recorded');
  sandbox.stripe.pay(sessionId);
  return { intentId: payment.payment_id, subject: intent.binding.subject, version: intent.version };
}

async function ledgerKinds(subject: string, intentId: string): Promise<string[]> {
  const entries = await (A.store as unknown as UsageStore).listLedger(subject, 0, 100);
  return entries.filter((e) => e.intentId === intentId).map((e) => e.kind);
}

describe('confirm_payment claims its run in the write that records paid', () => {
  it('confirmed on A and B at once: the tool runs once, onPaid and the ledger `paid` once', async () => {
    const paid = await paidOnA('racer', 'race');
    const [onA, onB] = await Promise.all([user(A, 'racer'), user(B, 'racer')]);
    const results = await Promise.all([
      onA.call('confirm_payment', { payment_id: paid.intentId }),
      onB.call('confirm_payment', { payment_id: paid.intentId }),
    ]);
    for (const result of results) expect(result.isError, textOf(result)).toBeFalsy();
    const texts = results.map((r) => textOf(r));
    expect(texts[0]).toBe(texts[1]);
    expect(runs.filter((r) => r.topic === 'race')).toHaveLength(1);
    expect(paidEvents.filter((e) => e.intentId === paid.intentId)).toHaveLength(1);
    expect((await ledgerKinds(paid.subject, paid.intentId)).sort()).toEqual(['paid', 'payment', 'run']);
    expect(await A.store.get(paid.intentId)).toMatchObject({ status: 'paid', run: 'done', fence: 1 });
  });

  it('one confirmation: paid and the claim are one write (attempt, paid+claim, result)', async () => {
    const paid = await paidOnA('single', 'single');
    const result = await (await user(B, 'single')).call('confirm_payment', { payment_id: paid.intentId });
    expect(textOf(result)).toBe('report on single by B');
    expect((await B.store.get(paid.intentId))?.version).toBe(paid.version + 2);
    expect(paidEvents.filter((e) => e.intentId === paid.intentId)).toEqual([
      { instance: 'B', intentId: paid.intentId },
    ]);
    expect((await ledgerKinds(paid.subject, paid.intentId)).sort()).toEqual(['paid', 'payment', 'run']);
  });

  it('a run lease held elsewhere: paid is written alone, and the run follows once the lease is free', async () => {
    const paid = await paidOnA('leased', 'leased');
    expect(await A.store.acquireLease(paid.intentId, 'a-crashed-runner', 300)).toEqual({ kind: 'acquired' });
    const result = await (await user(B, 'leased')).call('confirm_payment', { payment_id: paid.intentId });
    expect(textOf(result)).toBe('report on leased by B');
    // paid, the claim, the result: the claim could not ride on the paid write.
    expect((await B.store.get(paid.intentId))?.version).toBe(paid.version + 3);
    expect(runs.filter((r) => r.topic === 'leased')).toHaveLength(1);
    expect(paidEvents.filter((e) => e.intentId === paid.intentId)).toHaveLength(1);
  });
});
