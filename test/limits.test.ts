// Issue 11 items 1 and 8: one payer cannot evict other payers' paid payments, fill the store, or
// use up a provider's create quota for everyone. Real SDK clients, the Walleot stand-in over HTTP.
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryStore, type PaymentStore } from '../src/index.js';
import { checkoutUrlOf, connectClient, payAt, paymentOf, startWorld, textOf } from './support/paid-server.js';

let world: Awaited<ReturnType<typeof startWorld>>;
const closers: Array<() => Promise<void>> = [];

beforeEach(async () => {
  world = await startWorld();
});

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  await world.close();
});

const auth = (sub: string): AuthInfo => ({ token: `t-${sub}`, clientId: 'test', scopes: [], extra: { sub } });

/** A signed-in payer with a server of their own (one per connection) on the shared store. */
async function payer(sub: string, store: PaymentStore) {
  const { server } = world.makeServer({ store, flow: 'two_step' });
  const { client, close } = await connectClient(server, { elicitation: 'none', authInfo: auth(sub) });
  closers.push(close);
  return (name: string, args: Record<string, unknown>) =>
    client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
}

const walleotCreates = () =>
  world.sandbox.walleot.requests.entries.filter((r) => r.method === 'POST' && r.path.endsWith('/sessions'))
    .length;

const LIMIT_TEXT =
  /^You have 20 unpaid payments open for this server; pay or let them expire \(they expire after 60 minutes\) before starting another\. Nothing was charged\.$/;

describe('per-subject limits', () => {
  it('one subject making many calls with different arguments cannot lose a victim their paid payment', async () => {
    // Tight on purpose: room for two full attackers and the victim, not for a third attacker.
    const store = memoryStore({ maxEntries: 45 });
    const victim = await payer('victim', store);
    const required = await victim('process_data', { data: 'paid for' });
    const payment = paymentOf(required);
    expect(payment?.status, textOf(required)).toBe('pending');
    await payAt(checkoutUrlOf(payment));

    const refusals: string[] = [];
    for (const sub of ['mallory', 'mallet', 'marvin']) {
      const attacker = await payer(sub, store);
      for (let i = 0; i < 30; i++) {
        const result = await attacker('process_data', { data: `${sub} ${i}` });
        if (paymentOf(result) === undefined) refusals.push(textOf(result));
      }
    }
    // The first two got 20 payments each and then a clear refusal; the third found the store full
    // after 4 (45 - 1 - 40), and nothing made room by evicting anyone's payment.
    const overLimit = refusals.filter((t) => LIMIT_TEXT.test(t));
    const full = refusals.filter((t) => t.includes('cannot open more payments right now'));
    expect(overLimit.length).toBe(10 + 10);
    expect(full.length).toBe(30 - 4);
    expect(refusals.every((t) => t.endsWith('Nothing was charged.'))).toBe(true);

    // The victim's paid payment was never evicted: confirming it runs the tool.
    const done = await victim('confirm_payment', { payment_id: payment!.payment_id });
    expect(done.isError, textOf(done)).toBeFalsy();
    expect(textOf(done)).toBe('Processed: paid for');
    expect(world.runsOf('process_data')).toBe(1);
  });

  it("one subject cannot use up Walleot's 100 creates a minute for everyone", async () => {
    const store = memoryStore();
    const mallory = await payer('mallory', store);
    const before = walleotCreates();
    const answers = await Promise.all(
      Array.from({ length: 120 }, (_, i) => mallory('process_data', { data: `spam ${i}` })),
    );
    expect(answers.filter((r) => paymentOf(r)?.status === 'pending')).toHaveLength(20);
    expect(answers.filter((r) => LIMIT_TEXT.test(textOf(r)))).toHaveLength(100);
    // Her share of the stand-in's 100 creates a minute is her 20 open payments.
    expect(walleotCreates() - before).toBe(20);

    const carol = await payer('carol', store);
    const hers = await carol('process_data', { data: 'mine' });
    expect(paymentOf(hers)?.status, textOf(hers)).toBe('pending');
    expect(checkoutUrlOf(paymentOf(hers))).toContain(world.sandbox.walleot.origin);
  });

  it('a paid payment frees its place in the count', async () => {
    const store = memoryStore();
    const dan = await payer('dan', store);
    const first = paymentOf(await dan('process_data', { data: 'first' }));
    for (let i = 1; i < 20; i++) await dan('process_data', { data: `more ${i}` });
    expect(textOf(await dan('process_data', { data: 'one too many' }))).toMatch(LIMIT_TEXT);
    await payAt(checkoutUrlOf(first));
    const ran = await dan('confirm_payment', { payment_id: first!.payment_id });
    expect(textOf(ran)).toBe('Processed: first');
    expect(paymentOf(await dan('process_data', { data: 'one too many' }))?.status).toBe('pending');
  });
});
