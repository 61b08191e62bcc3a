// Bad input from every side (tool arguments, confirm_payment arguments, payment ids, webhook bodies,
// the pay page form, hostile strings shown on HTML pages): a clear error, and no state changes:
// nothing created in the store, nothing sent to a provider, no intent moved.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Stripe from 'stripe';
import { describe, expect } from 'vitest';
import { z } from 'zod';
import { type IntentRecord, memoryStore, type PaymentStore } from '../src/index.js';
import { type ConnectClient, it } from './support/fixture.js';
import type { HttpWorld } from './support/http-world.js';
import { paymentOf, textOf } from './support/paid-server.js';

const stripeSigner = new Stripe('sk_test_signing_only');

/** Strings that break naive HTML, JSON, SQL, shells and bidi text; an emoji outside the BMP. */
const HOSTILE = `<script>alert("x")</script> <img src=x onerror=alert(1)> "double" 'single' \`back\` & &amp; \u202Egnp.exe\u202C \u200F rtl \u200E 🔥✨ ' OR 1=1; -- $(rm -rf /)`;

/** A store that records what the router asks of it, so a test can tell nothing was written. */
function watchedStore() {
  const base = memoryStore();
  const writes: string[] = [];
  const reads: string[] = [];
  const ids = new Set<string>();
  const store = new Proxy(base, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const name = String(property);
        if (['insert', 'update', 'setChoice', 'markEvent'].includes(name)) writes.push(name);
        if (name === 'insert') ids.add((args[0] as IntentRecord).id);
        if (name === 'get') reads.push(String(args[0]));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as PaymentStore;
  return { store, writes, reads, ids };
}

const providerRequests = (world: HttpWorld) =>
  world.sandbox.walleot.requests.entries.length + world.sandbox.stripe.requests.entries.length;

/** Every intent's id@version: equal snapshots mean nothing changed. */
async function snapshot(store: PaymentStore, ids: Set<string>) {
  const records = await Promise.all([...ids].map((id) => store.get(id)));
  return records.map((r) => (r === undefined ? 'gone' : `${r.id}@${r.version}:${r.status}`)).sort();
}

async function setup(
  { world, connectClient }: { world: HttpWorld; connectClient: ConnectClient },
  options: { maxArgumentBytes?: number } = {},
) {
  const watched = watchedStore();
  const made = world.makeHttpServer({ store: watched.store, ...options });
  made.server.registerTool(
    'hostile',
    {
      description: `Describes ${HOSTILE}`,
      inputSchema: { text: z.string() },
      price: { amount: '0.05', currency: 'USD' },
      providers: ['walleot'],
    },
    async ({ text }) => {
      world.runs.push({ tool: 'hostile', args: { text }, hasSignal: true });
      return { content: [{ type: 'text', text: `echo ${text}` }] };
    },
  );
  made.server.registerTool(
    'hostile_card',
    {
      description: `Card ${HOSTILE}`,
      inputSchema: { text: z.string() },
      price: { amount: '1.00', currency: 'EUR' },
    },
    async ({ text }) => ({ content: [{ type: 'text', text: `card ${text}` }] }),
  );
  const connection = await connectClient(made.server, { elicitation: 'none' });
  const call = (name: string, args: unknown) =>
    connection.client.callTool({
      name,
      arguments: args as Record<string, unknown>,
    }) as Promise<CallToolResult>;
  return { ...made, ...watched, ...connection, call };
}

describe('tool arguments', () => {
  it('malformed arguments: the SDK’s validation error; nothing stored, nothing sent to a provider', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { call, writes } = await setup({ world, connectClient });
    for (const args of [{ data: 42 }, { data: null }, {}, { data: ['a'] }, { other: 'x' }]) {
      const result = await call('process_data', args);
      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(/Input validation error/);
      expect(paymentOf(result)).toBeUndefined();
    }
    expect(writes).toEqual([]);
    expect(providerRequests(world)).toBe(0);
    expect(world.runs).toEqual([]);
  });

  it('arguments over maxArgumentBytes: a clear error that says nothing was charged; nothing created', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { call, writes } = await setup({ world, connectClient }, { maxArgumentBytes: 1024 });
    const result = await call('process_data', { data: 'x'.repeat(2000) });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe(
      'The arguments of "process_data" are too large for a paid call. Nothing was charged.',
    );
    // Multi-byte characters count as bytes, not as characters.
    const emoji = await call('process_data', { data: '🔥'.repeat(300) }); // 1,200 bytes in UTF-8
    expect(textOf(emoji)).toContain('too large');
    expect(writes).toEqual([]);
    expect(providerRequests(world)).toBe(0);
    // Just under the limit is a normal paid call.
    const fits = await call('process_data', { data: 'x'.repeat(900) });
    expect(paymentOf(fits)?.status).toBe('pending');
  });

  it('hostile strings as arguments reach the tool exactly as sent, once paid', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { call, store } = await setup({ world, connectClient });
    const started = paymentOf(await call('hostile', { text: HOSTILE }))!;
    const intent = (await store.get(started.payment_id))!;
    world.sandbox.walleot.setStatus(intent.attempts[0]!.paymentId, 'paid');
    const done = await call('confirm_payment', { payment_id: started.payment_id });
    expect(textOf(done)).toBe(`echo ${HOSTILE}`);
    expect(world.runs).toEqual([{ tool: 'hostile', args: { text: HOSTILE }, hasSignal: true }]);
  });
});

describe('confirm_payment arguments and payment ids', () => {
  it('missing, too long, wrong type: validation errors; forged and junk ids: “Unknown payment_id”; nothing changes', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { call, writes, reads, ids, store } = await setup({ world, connectClient });
    const mine = paymentOf(await call('process_data', { data: 'mine' }))!;
    const before = await snapshot(store, ids);
    writes.length = 0;
    reads.length = 0;

    for (const args of [
      {},
      { payment_id: 'p'.repeat(101) },
      { payment_id: 42 },
      { payment_id: '' },
      { payment_id: mine.payment_id, method: 'm'.repeat(65) },
    ]) {
      const result = await call('confirm_payment', args);
      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(/Input validation error/);
    }
    const junk = [
      'pay_AAAAAAAAAAAAAAAAAAAAAAAA',
      "pay_' OR 1=1 --",
      '../../etc/passwd',
      HOSTILE.slice(0, 100),
      'pay_\u202Eabc',
    ];
    for (const id of junk) {
      const result = await call('confirm_payment', { payment_id: id });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toBe(
        `Unknown payment_id "${id}": no payment you can confirm has this id. If you paid it, confirm it from the account that started the payment: it is kept, and nothing is ever charged twice.`,
      );
    }
    // Only the well-formed id reached the store; junk is turned away before any lookup.
    expect(reads).toEqual(['pay_AAAAAAAAAAAAAAAAAAAAAAAA']);

    // A method that cannot take the payment is refused by name.
    const badMethod = await call('confirm_payment', { payment_id: mine.payment_id, method: 'paypal' });
    expect(textOf(badMethod)).toBe('"paypal" cannot take this payment. Choose one of: walleot.');

    expect(writes).toEqual([]);
    expect(await snapshot(store, ids)).toEqual(before);
    expect(world.runs).toEqual([]);
  });
});

describe('webhooks', () => {
  it('tampered, unsigned, wrongly signed, stale or non-JSON bodies: 400 and nothing changes', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { call, store, ids, writes } = await setup({ world, connectClient });
    const started = paymentOf(await call('hostile_card', { text: 'webhook' }))!;
    const intent = (await store.get(started.payment_id))!;
    const sessionId = intent.attempts[0]!.paymentId;
    world.sandbox.stripe.pay(sessionId); // raises checkout.session.completed (no delivery target)
    const event = world.sandbox.stripe.webhookEvents.at(-1)!;
    const payload = JSON.stringify(event);
    const now = Math.floor(Date.now() / 1000);
    const sign = (body: string, secret = world.sandbox.stripe.webhookSecret, timestamp = now) =>
      stripeSigner.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
    const before = await snapshot(store, ids);
    writes.length = 0;

    const attempts: Array<[string, string, string | undefined]> = [
      ['tampered body', payload.replace('"paid"', '"unpaid"'), sign(payload)],
      ['tampered amount', payload.replace(/"amount_total":\d+/, '"amount_total":1'), sign(payload)],
      ['no signature', payload, undefined],
      ['wrong secret', payload, sign(payload, 'whsec_not_the_secret')],
      ['stale', payload, sign(payload, world.sandbox.stripe.webhookSecret, now - 3600)],
      ['not JSON', 'not json at all', sign('not json at all')],
      ['hostile header', payload, `t=${now},v1=<script>alert(1)</script>' OR 1=1 --`],
    ];
    for (const [what, body, signature] of attempts) {
      const response = await fetch(`${world.publicUrl}/webhooks/stripe`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(signature ? { 'stripe-signature': signature } : {}),
        },
        body,
      });
      const answer = (await response.json()) as { error?: string };
      expect(response.status, what).toBe(400);
      expect(answer.error, what).toMatch(/Stripe webhook/);
      expect(JSON.stringify(answer)).not.toContain(world.sandbox.stripe.webhookSecret);
    }
    // Unknown provider and wrong method.
    expect(
      (await fetch(`${world.publicUrl}/webhooks/paypal`, { method: 'POST', body: payload })).status,
    ).toBe(404);
    expect((await fetch(`${world.publicUrl}/webhooks/stripe`)).status).toBe(405);

    expect(writes).toEqual([]);
    expect(await snapshot(store, ids)).toEqual(before);
    expect(world.runs).toEqual([]);
  });
});

describe('HTML pages show hostile strings escaped', () => {
  /** The raw markup must not appear; its escaped form must. */
  function expectEscaped(html: string, where: string) {
    expect(html, where).not.toContain('<script>alert');
    expect(html, where).not.toContain('<img src=x');
    expect(html, where).not.toContain('"double"');
    expect(html, where).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;');
    // Bidi controls and emoji pass through as text (escaping is about markup, not about hiding them).
    expect(html, where).toContain('🔥✨');
  }

  it('the hosted pay page and the return page', async ({ httpWorld: world, connectClient }) => {
    const { call } = await setup({ world, connectClient });
    const payment = paymentOf(await call('hostile', { text: 'page' }))!;
    const pay = await fetch(`${world.publicUrl}/pay/${payment.payment_id}`);
    expect(pay.status).toBe(200);
    expectEscaped(await pay.text(), 'pay page');
    // The return page names the tool, not the description: it must still be well-formed.
    const back = await fetch(
      `${world.publicUrl}/return/${payment.payment_id}?outcome=${encodeURIComponent(HOSTILE)}`,
    );
    expect(back.status).toBe(200);
    const html = await back.text();
    expect(html).not.toContain('<script>alert');
  });

  it('the Walleot and Stripe sandbox checkout pages', async ({ httpWorld: world, connectClient }) => {
    const { call, store } = await setup({ world, connectClient });
    for (const tool of ['hostile', 'hostile_card']) {
      const payment = paymentOf(await call(tool, { text: 'checkout' }))!;
      const intent = (await store.get(payment.payment_id))!;
      const checkout = await fetch(intent.attempts[0]!.url);
      expect(checkout.status).toBe(200);
      expectEscaped(await checkout.text(), `${tool} checkout page`);
    }
  });

  it('the pay page form: a forged or hostile method is refused with 400 and changes nothing', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const { call, store, ids, writes } = await setup({ world, connectClient });
    const payment = paymentOf(await call('report', { topic: HOSTILE }))!;
    const before = await snapshot(store, ids);
    writes.length = 0;
    for (const body of [
      `method=${encodeURIComponent(HOSTILE)}`,
      'method=paypal',
      'method=',
      'nothing=1',
      'method=x'.repeat(5000),
    ]) {
      const response = await fetch(`${world.publicUrl}/pay/${payment.payment_id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
        redirect: 'manual',
      });
      const html = await response.text();
      expect([400, 413]).toContain(response.status);
      expect(html).not.toContain('<script>alert');
    }
    for (const id of [
      'pay_AAAAAAAAAAAAAAAAAAAAAAAA',
      encodeURIComponent(HOSTILE.slice(0, 40)),
      '..%2F..%2Fetc',
    ]) {
      const page = await fetch(`${world.publicUrl}/pay/${id}`);
      expect(page.status).toBe(404);
      expect(await page.text()).not.toContain('<script>alert');
    }
    expect(writes).toEqual([]);
    expect(await snapshot(store, ids)).toEqual(before);
    expect(providerRequests(world)).toBe(0); // the report's payment waits for a method: nothing was created
  });
});
