import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { SandboxStateError, type StripeSandbox, startStripeSandbox } from '../src/sandbox/stripe.js';
import { SandboxConfigError } from '../src/sandbox.js';

/** A webhook endpoint that keeps every raw delivery. */
interface Receiver {
  url: string;
  received: Array<{ body: string; headers: IncomingHttpHeaders }>;
  status: number;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const received: Receiver['received'] = [];
  const receiver = { received, status: 200 } as Receiver;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
      res.writeHead(receiver.status, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/stripe`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return receiver;
}

function priced(
  currency: string,
  unitAmount: number,
  extra: Partial<Stripe.Checkout.SessionCreateParams> = {},
): Stripe.Checkout.SessionCreateParams {
  return {
    mode: 'payment',
    line_items: [
      {
        price_data: { currency, unit_amount: unitAmount, product_data: { name: 'Tool call: add' } },
        quantity: 1,
      },
    ],
    ...extra,
  };
}

let sandbox: StripeSandbox;
let stripe: Stripe;
let receiver: Receiver;

beforeAll(async () => {
  sandbox = await startStripeSandbox();
  stripe = new Stripe(sandbox.apiKey, { ...sandbox.sdkOptions, maxNetworkRetries: 0, telemetry: false });
  receiver = await startReceiver();
});

afterAll(async () => {
  await sandbox.close();
  await receiver.close();
});

beforeEach(() => {
  sandbox.reset();
  receiver.received.length = 0;
  receiver.status = 200;
});

/** Raw HTTP to the stand-in, for what the SDK cannot send (or hides). */
async function raw(
  method: string,
  path: string,
  options: { body?: string; key?: string | null; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; json: unknown }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key !== null) headers['authorization'] = `Bearer ${options.key ?? sandbox.apiKey}`;
  if (options.body !== undefined) headers['content-type'] ??= 'application/x-www-form-urlencoded';
  const response = await fetch(`${sandbox.origin}${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    json: text === '' ? undefined : JSON.parse(text),
  };
}

async function rejection(promise: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Stripe.errors.StripeError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('Stripe sandbox: sessions through the real stripe SDK', () => {
  it('creates an open, unpaid session with a local checkout url and no PaymentIntent yet', async () => {
    const now = sandbox.clock.nowSeconds();
    const session = await stripe.checkout.sessions.create(
      priced('usd', 50, { client_reference_id: 'intent_1', metadata: { tool: 'add' } }),
    );
    expect(session.id).toMatch(/^cs_test_[A-Za-z0-9]+$/);
    expect(session.object).toBe('checkout.session');
    expect(session.status).toBe('open');
    expect(session.payment_status).toBe('unpaid');
    expect(session.url).toBe(`${sandbox.origin}/checkout/${session.id}`);
    expect(session.payment_intent).toBeNull();
    expect(session.amount_total).toBe(50);
    expect(session.currency).toBe('usd');
    expect(session.metadata).toEqual({ tool: 'add' });
    expect(session.client_reference_id).toBe('intent_1');
    expect(session.mode).toBe('payment');
    expect(session.expires_at - now).toBeGreaterThanOrEqual(24 * 3600);
    expect(session.expires_at - now).toBeLessThanOrEqual(24 * 3600 + 2);
    expect(session.lastResponse.requestId).toMatch(/^req_/);

    const [logged] = sandbox.requests.entries;
    expect(logged?.method).toBe('POST');
    expect(logged?.path).toBe('/v1/checkout/sessions');
    expect(logged?.headers['idempotency-key']).toMatch(/^stripe-node-retry-/);
    expect(logged?.headers['authorization']).toBe('Bearer ****dbox');
    expect(logged?.body).toContain('line_items[0][price_data][unit_amount]=50');
  });

  it('retrieves a session, expanding payment_intent once it is paid', async () => {
    const created = await stripe.checkout.sessions.create(priced('eur', 1250));
    const before = await stripe.checkout.sessions.retrieve(created.id, { expand: ['payment_intent'] });
    expect(before.status).toBe('open');
    expect(before.payment_intent).toBeNull();

    sandbox.pay(created.id);
    const plain = await stripe.checkout.sessions.retrieve(created.id);
    expect(plain.status).toBe('complete');
    expect(plain.payment_status).toBe('paid');
    expect(plain.url).toBeNull();
    expect(plain.payment_intent).toMatch(/^pi_/);

    const expanded = await stripe.checkout.sessions.retrieve(created.id, { expand: ['payment_intent'] });
    const intent = expanded.payment_intent as Stripe.PaymentIntent;
    expect(intent.id).toBe(plain.payment_intent);
    expect(intent.object).toBe('payment_intent');
    expect(intent.status).toBe('succeeded');
    expect(intent.amount_received).toBe(1250);

    // `expand[]=` without an index, with the form content type on a GET, as some clients send it.
    const viaRaw = await raw('GET', `/v1/checkout/sessions/${created.id}?expand[]=payment_intent`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(viaRaw.status).toBe(200);
    expect(viaRaw.json).toMatchObject({ payment_intent: { id: plain.payment_intent, status: 'succeeded' } });
    const badExpand = await raw('GET', `/v1/checkout/sessions/${created.id}?expand[]=customer`);
    expect(badExpand.json).toMatchObject({ error: { param: 'expand[0]' } });
  });

  it('accepts expand on create and parses more than 20 line items (qs arrayLimit)', async () => {
    const line_items = Array.from({ length: 25 }, (_, i) => ({
      price_data: { currency: 'usd', unit_amount: 100 + i, product_data: { name: `item ${i}` } },
      quantity: 2,
    }));
    const session = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items,
      expand: ['payment_intent'],
    });
    expect(session.amount_total).toBe(2 * (25 * 100 + (24 * 25) / 2));
    expect(session.payment_intent).toBeNull();
  });

  it('expires only open sessions', async () => {
    const open = await stripe.checkout.sessions.create(priced('usd', 50));
    const expired = await stripe.checkout.sessions.expire(open.id);
    expect(expired.status).toBe('expired');
    expect(expired.payment_status).toBe('unpaid');
    expect(expired.url).toBeNull();

    const again = await rejection(stripe.checkout.sessions.expire(open.id));
    expect(again).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(again.statusCode).toBe(400);
    expect(again.message).toContain('status of "expired"');

    const paid = await stripe.checkout.sessions.create(priced('usd', 50));
    sandbox.pay(paid.id);
    const notOpen = await rejection(stripe.checkout.sessions.expire(paid.id));
    expect(notOpen.message).toContain('status of "complete"');
    expect(sandbox.getSession(paid.id)?.payment_status).toBe('paid');
  });

  it('answers 404 resource_missing for an unknown session', async () => {
    const error = await rejection(stripe.checkout.sessions.retrieve('cs_test_doesnotexist'));
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error.statusCode).toBe(404);
    expect(error.code).toBe('resource_missing');
    expect(error.message).toBe("No such checkout.session: 'cs_test_doesnotexist'");
    expect(error.requestId).toMatch(/^req_/);
  });

  it('lapses an open session when expires_at passes on the sandbox clock', async () => {
    // The sandbox clock is the wall clock plus what the test advances: with the wall clock
    // running, a second boundary passing between two lines here (30 min minus a second left, or
    // one second early) would make this test about timing. The wall clock stands still instead.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      const now = sandbox.clock.nowSeconds();
      const session = await stripe.checkout.sessions.create(priced('usd', 50, { expires_at: now + 1800 }));
      expect(session.expires_at).toBe(now + 1800);
      sandbox.clock.advance(1799);
      expect((await stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
      sandbox.clock.advance(1);
      const lapsed = await stripe.checkout.sessions.retrieve(session.id);
      expect(lapsed.status).toBe('expired');
      expect(lapsed.url).toBeNull();
      expect(sandbox.webhookEvents.map((e) => e.type)).toEqual(['checkout.session.expired']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('takes async payments through complete/unpaid to paid or failed', async () => {
    const a = await stripe.checkout.sessions.create(priced('usd', 500));
    sandbox.payAsync(a.id);
    const pending = await stripe.checkout.sessions.retrieve(a.id, { expand: ['payment_intent'] });
    expect([pending.status, pending.payment_status]).toEqual(['complete', 'unpaid']);
    expect((pending.payment_intent as Stripe.PaymentIntent).status).toBe('processing');
    sandbox.payAsync(a.id, 'succeeded');
    expect(sandbox.getSession(a.id)?.payment_status).toBe('paid');

    const b = await stripe.checkout.sessions.create(priced('usd', 500));
    sandbox.payAsync(b.id, 'failed');
    const failed = await stripe.checkout.sessions.retrieve(b.id, { expand: ['payment_intent'] });
    expect([failed.status, failed.payment_status]).toEqual(['complete', 'unpaid']);
    expect((failed.payment_intent as Stripe.PaymentIntent).status).toBe('requires_payment_method');
    expect(() => sandbox.payAsync(b.id, 'succeeded')).toThrow(SandboxStateError);
    expect(() => sandbox.pay(b.id)).toThrow(SandboxStateError);
  });

  it('refunds a paid session by payment_intent, once', async () => {
    const session = await stripe.checkout.sessions.create(priced('usd', 700));
    const paid = sandbox.pay(session.id);
    const refund = await stripe.refunds.create({ payment_intent: paid.payment_intent as string });
    expect(refund.object).toBe('refund');
    expect(refund.amount).toBe(700);
    expect(refund.status).toBe('succeeded');
    expect(sandbox.getRefunds(session.id)).toHaveLength(1);

    const twice = await rejection(stripe.refunds.create({ payment_intent: paid.payment_intent as string }));
    expect(twice.code).toBe('charge_already_refunded');
    const unknown = await rejection(stripe.refunds.create({ payment_intent: 'pi_unknown' }));
    expect(unknown.statusCode).toBe(404);
    expect(unknown.param).toBe('payment_intent');
  });
});

describe('Stripe sandbox: validation', () => {
  const lineItem = (currency: string, unit_amount: number, name = 'x') => [
    { price_data: { currency, unit_amount, product_data: { name } }, quantity: 1 },
  ];

  it.each([
    ['usd', 49, 'amount_too_small', '$0.50'],
    ['gbp', 29, 'amount_too_small', '£0.30'],
    ['jpy', 49, 'amount_too_small', '¥50'],
    ['huf', 17_499, 'amount_too_small', '175.00 HUF'],
    ['usd', 100_000_000, 'amount_too_large', '$999,999.99'],
    ['kwd', 5125, 'invalid_charge_amount', 'divisible by 10'],
    ['isk', 150, 'invalid_charge_amount_no_decimal_compatible', 'divisible by 100'],
  ])('refuses %s %i with %s', async (currency, amount, code, text) => {
    const error = await rejection(stripe.checkout.sessions.create(priced(currency, amount)));
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error.statusCode).toBe(400);
    expect(error.code).toBe(code);
    expect(error.param).toBe('line_items[0][price_data][unit_amount]');
    expect(error.message).toContain(text);
  });

  it.each([
    ['usd', 50],
    ['gbp', 30],
    ['jpy', 50],
    ['kwd', 5120],
    ['isk', 10_000],
    ['usd', 99_999_999],
  ])('accepts %s %i (zero-decimal amounts are whole units)', async (currency, amount) => {
    const session = await stripe.checkout.sessions.create(priced(currency, amount));
    expect(session.amount_total).toBe(amount);
    expect(session.currency).toBe(currency);
  });

  it.each<[string, Stripe.Checkout.SessionCreateParams, string, string | undefined]>([
    ['no line items', { mode: 'payment' }, 'line_items', 'parameter_missing'],
    [
      'no product name',
      {
        mode: 'payment',
        line_items: [
          {
            price_data: {
              currency: 'usd',
              unit_amount: 50,
              // Deliberately malformed: the SDK's types (rightly) require a name.
              product_data: { description: 'no name' } as unknown as { name: string },
            },
            quantity: 1,
          },
        ],
      },
      'line_items[0][price_data][product_data][name]',
      'parameter_missing',
    ],
    [
      'no quantity',
      {
        mode: 'payment',
        line_items: [{ price_data: { currency: 'usd', unit_amount: 50, product_data: { name: 'x' } } }],
      },
      'line_items[0][quantity]',
      'parameter_missing',
    ],
    [
      'uppercase currency',
      { mode: 'payment', line_items: lineItem('USD', 50) },
      'line_items[0][price_data][currency]',
      undefined,
    ],
    [
      'unknown currency',
      { mode: 'payment', line_items: lineItem('usdc', 50) },
      'line_items[0][price_data][currency]',
      undefined,
    ],
    ['subscription mode', { mode: 'subscription', line_items: lineItem('usd', 50) }, 'mode', undefined],
    [
      'client_reference_id over 200',
      { mode: 'payment', line_items: lineItem('usd', 50), client_reference_id: 'c'.repeat(201) },
      'client_reference_id',
      undefined,
    ],
    [
      '51 metadata keys',
      {
        mode: 'payment',
        line_items: lineItem('usd', 50),
        metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])),
      },
      'metadata',
      undefined,
    ],
    [
      'a 41-character metadata key',
      { mode: 'payment', line_items: lineItem('usd', 50), metadata: { ['k'.repeat(41)]: 'v' } },
      `metadata[${'k'.repeat(41)}]`,
      undefined,
    ],
    [
      'a 501-character metadata value',
      { mode: 'payment', line_items: lineItem('usd', 50), metadata: { note: 'v'.repeat(501) } },
      'metadata[note]',
      undefined,
    ],
    [
      'an empty product name',
      { mode: 'payment', line_items: lineItem('usd', 50, '') },
      'line_items[0][price_data][product_data][name]',
      'parameter_invalid_empty',
    ],
  ])('refuses %s, naming the parameter', async (_label, params, param, code) => {
    const error = await rejection(stripe.checkout.sessions.create(params));
    expect(error.statusCode).toBe(400);
    expect(error.rawType).toBe('invalid_request_error');
    expect(error.param).toBe(param);
    if (code !== undefined) expect(error.code).toBe(code);
    expect(sandbox.listSessions()).toHaveLength(0);
  });

  it('accepts metadata at the limits and drops empty values', async () => {
    const metadata = Object.fromEntries(
      Array.from({ length: 50 }, (_, i) => [String(i).padStart(40, 'k'), 'v'.repeat(500)]),
    );
    const session = await stripe.checkout.sessions.create(
      priced('usd', 50, { metadata: { ...metadata }, client_reference_id: 'c'.repeat(200) }),
    );
    expect(Object.keys(session.metadata ?? {})).toHaveLength(50);
    const withEmpty = await stripe.checkout.sessions.create(
      priced('usd', 50, { metadata: { a: '1', b: '' } }),
    );
    expect(withEmpty.metadata).toEqual({ a: '1' });
  });

  it('checks the expires_at window (30 min to 24 h) on the sandbox clock', async () => {
    sandbox.clock.advance(7 * 24 * 3600);
    const now = sandbox.clock.nowSeconds();
    for (const bad of [now + 29 * 60, now + 24 * 3600 + 10]) {
      const error = await rejection(stripe.checkout.sessions.create(priced('usd', 50, { expires_at: bad })));
      expect(error.param).toBe('expires_at');
    }
    const ok = await stripe.checkout.sessions.create(priced('usd', 50, { expires_at: now + 3600 }));
    expect(ok.expires_at).toBe(now + 3600);
  });

  it('refuses more than 100 line items and accepts exactly 100', async () => {
    const items = (n: number) =>
      Array.from({ length: n }, () => ({
        price_data: { currency: 'usd', unit_amount: 1, product_data: { name: 'x' } },
        quantity: 1,
      }));
    const error = await rejection(
      stripe.checkout.sessions.create({ mode: 'payment', line_items: items(101) }),
    );
    expect(error.param).toBe('line_items');
    const ok = await stripe.checkout.sessions.create({ mode: 'payment', line_items: items(100) });
    expect(ok.amount_total).toBe(100);
  });

  it('refuses unknown parameters, non-integers and removed parameters over raw HTTP', async () => {
    const base =
      'mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][product_data][name]=x&line_items[0][quantity]=1';
    const nonInteger = await raw('POST', '/v1/checkout/sessions', {
      body: `${base}&line_items[0][price_data][unit_amount]=1.5`,
    });
    expect(nonInteger.status).toBe(400);
    expect(nonInteger.json).toMatchObject({
      error: {
        type: 'invalid_request_error',
        code: 'parameter_invalid_integer',
        param: 'line_items[0][price_data][unit_amount]',
      },
    });
    const removed = await raw('POST', '/v1/checkout/sessions', {
      body: `${base}&line_items[0][price_data][unit_amount]=50&payment_method_types[0]=card`,
    });
    expect(removed.json).toMatchObject({
      error: { code: 'parameter_unknown', param: 'payment_method_types' },
    });
    const json = await raw('POST', '/v1/checkout/sessions', {
      body: '{"mode":"payment"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(json.status).toBe(400);
  });
});

describe('Stripe sandbox: auth, errors and request ids', () => {
  it('answers 401 in Stripe error shape for a wrong or missing key, masking the key', async () => {
    const wrong = new Stripe('sk_test_wrongkey1234', {
      ...sandbox.sdkOptions,
      maxNetworkRetries: 0,
      telemetry: false,
    });
    const error = await rejection(wrong.checkout.sessions.create(priced('usd', 50)));
    expect(error).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(error.statusCode).toBe(401);
    expect(error.message).toContain('1234');
    expect(error.message).not.toContain('wrongkey');

    const missing = await raw('GET', '/v1/checkout/sessions/cs_test_x', { key: null });
    expect(missing.status).toBe(401);
    expect(missing.json).toMatchObject({ error: { type: 'invalid_request_error' } });
    expect(missing.headers.get('request-id')).toMatch(/^req_/);
  });

  it('puts a Request-Id on every API response: success, error, unknown route, injected fault', async () => {
    const ok = await raw('POST', '/v1/checkout/sessions', {
      body: 'mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=50&line_items[0][price_data][product_data][name]=x&line_items[0][quantity]=1',
    });
    const notFound = await raw('GET', '/v1/checkout/sessions/cs_test_nope');
    const unknownRoute = await raw('GET', '/v1/customers');
    sandbox.fail({ status: 500 });
    const fault = await raw('GET', '/v1/checkout/sessions/cs_test_nope');
    const ids = [ok, notFound, unknownRoute, fault].map((r) => r.headers.get('request-id'));
    expect([ok.status, notFound.status, unknownRoute.status, fault.status]).toEqual([200, 404, 404, 500]);
    for (const id of ids) expect(id).toMatch(/^req_[A-Za-z0-9]+$/);
    expect(new Set(ids).size).toBe(4);
    expect(fault.json).toMatchObject({ error: { type: 'api_error' } });
  });

  it('serves injected faults from the control endpoint in Stripe shape, with Stripe-Should-Retry', async () => {
    const control = await fetch(`${sandbox.origin}/__test/fail-next`, {
      method: 'POST',
      body: JSON.stringify({ status: 429, shouldRetry: false, headers: { 'Retry-After': '3' } }),
    });
    expect(control.status).toBe(200);
    const limited = await raw('GET', '/v1/checkout/sessions/cs_test_nope');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('stripe-should-retry')).toBe('false');
    expect(limited.headers.get('retry-after')).toBe('3');
    expect(limited.json).toMatchObject({ error: { code: 'rate_limit' } });

    sandbox.fail({ kind: 'malformed' });
    const error = await rejection(stripe.checkout.sessions.retrieve('cs_test_nope'));
    expect(error).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(error.message).toContain('Invalid JSON');

    sandbox.fail({ kind: 'hang' });
    const hung = await rejection(stripe.checkout.sessions.retrieve('cs_test_nope', {}, { timeout: 200 }));
    expect(hung).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect(hung.message).toContain('timeout');
  });

  it('validates control bodies', async () => {
    const post = (path: string, body: unknown) =>
      fetch(`${sandbox.origin}${path}`, { method: 'POST', body: JSON.stringify(body) }).then(async (r) => ({
        status: r.status,
        json: (await r.json()) as { error?: { message: string } },
      }));
    expect((await post('/__test/clock', { advanceSeconds: 'soon' })).status).toBe(400);
    expect((await post('/__test/fail-next', { status: 42 })).status).toBe(400);
    expect((await post('/__test/webhooks', { url: 'ftp://x' })).status).toBe(400);
    expect((await post('/__test/sessions/cs_test_x/pay_async', { outcome: 'maybe' })).status).toBe(400);
    expect((await post('/__test/sessions/cs_test_unknown/pay', {})).status).toBe(404);
    expect((await post('/__test/nothing', {})).status).toBe(404);
    const clock = await post('/__test/clock', { advanceSeconds: 60 });
    expect(clock.status).toBe(200);
  });
});

describe('Stripe sandbox: idempotency', () => {
  it('replays the first answer for the same key and parameters', async () => {
    const key = 'intent-1-create';
    const first = await stripe.checkout.sessions.create(priced('usd', 50), { idempotencyKey: key });
    const second = await stripe.checkout.sessions.create(priced('usd', 50), { idempotencyKey: key });
    expect(second.id).toBe(first.id);
    expect(second.lastResponse.idempotencyKey).toBe(key);
    expect(second.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(second.lastResponse.headers['original-request']).toBe(first.lastResponse.requestId);
    expect(sandbox.listSessions()).toHaveLength(1);
  });

  it('refuses the same key with different parameters (StripeIdempotencyError)', async () => {
    await stripe.checkout.sessions.create(priced('usd', 50), { idempotencyKey: 'k-mismatch' });
    const error = await rejection(
      stripe.checkout.sessions.create(priced('usd', 60), { idempotencyKey: 'k-mismatch' }),
    );
    expect(error).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(error.statusCode).toBe(400);
    expect(error.rawType).toBe('idempotency_error');
    expect(sandbox.listSessions()).toHaveLength(1);
  });

  it('answers 409 to a duplicate while the first request is still executing', async () => {
    sandbox.fail({ delayMs: 300 });
    const body =
      'mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=50&line_items[0][price_data][product_data][name]=x&line_items[0][quantity]=1';
    const send = () =>
      raw('POST', '/v1/checkout/sessions', { body, headers: { 'idempotency-key': 'k-concurrent' } });
    const results = await Promise.all([send(), send()]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const conflict = results.find((r) => r.status === 409);
    expect(conflict?.json).toMatchObject({ error: { code: 'idempotency_key_in_use' } });
    expect(sandbox.listSessions()).toHaveLength(1);
    // Once the first finished, the same request replays it.
    const replay = await send();
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
  });

  it('saves nothing for a request that failed validation', async () => {
    const bad = await rejection(
      stripe.checkout.sessions.create(priced('usd', 10), { idempotencyKey: 'k-valid' }),
    );
    expect(bad.code).toBe('amount_too_small');
    const good = await stripe.checkout.sessions.create(priced('usd', 50), { idempotencyKey: 'k-valid' });
    expect(good.status).toBe('open');
  });

  it('replays errors of requests that executed, as Stripe does', async () => {
    const session = await stripe.checkout.sessions.create(priced('usd', 50));
    sandbox.pay(session.id);
    const first = await rejection(
      stripe.checkout.sessions.expire(session.id, {}, { idempotencyKey: 'k-expire' }),
    );
    const again = await rejection(
      stripe.checkout.sessions.expire(session.id, {}, { idempotencyKey: 'k-expire' }),
    );
    expect(again.statusCode).toBe(first.statusCode);
    expect(again.message).toBe(first.message);
    expect(again.headers?.['idempotent-replayed']).toBe('true');
  });

  it('refuses keys longer than 255 characters', async () => {
    const error = await rejection(
      stripe.checkout.sessions.create(priced('usd', 50), { idempotencyKey: 'k'.repeat(256) }),
    );
    expect(error.statusCode).toBe(400);
    expect(error.message).toContain('255');
    expect(sandbox.listSessions()).toHaveLength(0);
  });

  it('forgets keys after 24 hours on the sandbox clock', async () => {
    const first = await stripe.checkout.sessions.create(priced('usd', 50), { idempotencyKey: 'k-old' });
    sandbox.clock.advance(24 * 3600 + 1);
    const later = await stripe.checkout.sessions.create(priced('usd', 75), { idempotencyKey: 'k-old' });
    expect(later.id).not.toBe(first.id);
    expect(later.amount_total).toBe(75);
  });
});

describe('Stripe sandbox: webhooks', () => {
  afterEach(() => sandbox.setWebhookTarget(undefined));

  const events = () =>
    receiver.received.map((r) => {
      const header = r.headers['stripe-signature'];
      return Stripe.webhooks.constructEvent(r.body, header as string, sandbox.webhookSecret);
    });

  it('delivers a signed checkout.session.completed with the full event envelope', async () => {
    sandbox.setWebhookTarget({ url: receiver.url });
    const session = await stripe.checkout.sessions.create(
      priced('usd', 50, { metadata: { payrouter_intent: 'i1' } }),
    );
    sandbox.pay(session.id);
    await sandbox.flushWebhooks();

    const [event] = events();
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]?.headers['stripe-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(event?.type).toBe('checkout.session.completed');
    expect(event?.object).toBe('event');
    expect(event?.id).toMatch(/^evt_/);
    expect(event?.api_version).toBe('2026-10-28.endive');
    expect(event?.livemode).toBe(false);
    if (event?.type !== 'checkout.session.completed') throw new Error('unexpected event');
    expect(event.data.object.id).toBe(session.id);
    expect(event.data.object.status).toBe('complete');
    expect(event.data.object.payment_status).toBe('paid');
    expect(event.data.object.metadata).toEqual({ payrouter_intent: 'i1' });
    expect(sandbox.webhookDeliveries).toEqual([{ eventId: event.id, type: event.type, status: 200 }]);
  });

  it('signs with the target secret, which a wrong secret cannot verify', async () => {
    sandbox.setWebhookTarget({ url: receiver.url, secret: 'whsec_endpoint_specific' });
    const session = await stripe.checkout.sessions.create(priced('usd', 50));
    sandbox.pay(session.id);
    await sandbox.flushWebhooks();
    const [delivery] = receiver.received;
    const header = delivery?.headers['stripe-signature'] as string;
    expect(Stripe.webhooks.constructEvent(delivery?.body ?? '', header, 'whsec_endpoint_specific').type).toBe(
      'checkout.session.completed',
    );
    expect(() => Stripe.webhooks.constructEvent(delivery?.body ?? '', header, sandbox.webhookSecret)).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
  });

  it('sends all four event types, the expiry one caused by the expire request', async () => {
    sandbox.setWebhookTarget({ url: receiver.url });
    const a = await stripe.checkout.sessions.create(priced('usd', 50));
    sandbox.payAsync(a.id, 'succeeded');
    const b = await stripe.checkout.sessions.create(priced('usd', 50));
    sandbox.payAsync(b.id, 'failed');
    const c = await stripe.checkout.sessions.create(priced('usd', 50));
    const expired = await stripe.checkout.sessions.expire(c.id);
    await sandbox.flushWebhooks();

    const got = events().map((e) => [e.type, (e.data.object as Stripe.Checkout.Session).id]);
    expect(got).toEqual([
      ['checkout.session.completed', a.id],
      ['checkout.session.async_payment_succeeded', a.id],
      ['checkout.session.completed', b.id],
      ['checkout.session.async_payment_failed', b.id],
      ['checkout.session.expired', c.id],
    ]);
    const expiry = events()[4];
    expect(expiry?.request?.id).toBe(expired.lastResponse.requestId);
  });

  it('duplicates and reorders deliveries when asked', async () => {
    sandbox.setWebhookTarget({ url: receiver.url, duplicate: true, reorder: true });
    const session = await stripe.checkout.sessions.create(priced('usd', 50));
    sandbox.payAsync(session.id, 'succeeded');
    await sandbox.flushWebhooks();
    const got = events();
    expect(got.map((e) => e.type)).toEqual([
      'checkout.session.async_payment_succeeded',
      'checkout.session.async_payment_succeeded',
      'checkout.session.completed',
      'checkout.session.completed',
    ]);
    expect(got[0]?.id).toBe(got[1]?.id);
    expect(got[2]?.id).toBe(got[3]?.id);
    expect(new Set(got.map((e) => e.id)).size).toBe(2);
  });

  it('records failed deliveries instead of throwing', async () => {
    receiver.status = 500;
    sandbox.setWebhookTarget({ url: receiver.url });
    const a = await stripe.checkout.sessions.create(priced('usd', 50));
    sandbox.pay(a.id);
    await sandbox.flushWebhooks();
    sandbox.setWebhookTarget({ url: 'http://127.0.0.1:1/unreachable' });
    const b = await stripe.checkout.sessions.create(priced('usd', 50));
    sandbox.pay(b.id);
    await sandbox.flushWebhooks();
    expect(sandbox.webhookDeliveries.map((d) => d.status)).toEqual([500, 0]);
    expect(sandbox.webhookDeliveries[1]?.error).toBeTruthy();
  });

  it('is driven by the control endpoints too', async () => {
    const post = (path: string, body: unknown = {}) =>
      fetch(`${sandbox.origin}${path}`, { method: 'POST', body: JSON.stringify(body) });
    expect((await post('/__test/webhooks', { url: receiver.url, reorder: true })).status).toBe(200);
    const a = await stripe.checkout.sessions.create(priced('usd', 50));
    const paid = await post(`/__test/sessions/${a.id}/pay_async`, { outcome: 'failed' });
    expect(((await paid.json()) as Stripe.Checkout.Session).status).toBe('complete');
    const b = await stripe.checkout.sessions.create(priced('usd', 50));
    expect((await post(`/__test/sessions/${b.id}/lapse`)).status).toBe(200);
    expect((await post(`/__test/sessions/${b.id}/pay`)).status).toBe(400);
    await sandbox.flushWebhooks();
    expect(events().map((e) => e.type)).toEqual([
      'checkout.session.async_payment_failed',
      'checkout.session.completed',
      'checkout.session.expired',
    ]);
    const listed = (await (await fetch(`${sandbox.origin}/__test/webhooks`)).json()) as {
      deliveries: unknown[];
    };
    expect(listed.deliveries).toHaveLength(3);
    expect((await post('/__test/reset')).status).toBe(200);
    expect(sandbox.listSessions()).toHaveLength(0);
    expect(sandbox.webhookEvents).toHaveLength(0);
  });
});

describe('Stripe sandbox: checkout page', () => {
  const page = (path: string, method = 'GET') =>
    fetch(`${sandbox.origin}${path}`, { method, redirect: 'manual' });

  it('shows brand, amount and an HTML-escaped product name', async () => {
    const session = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [
        {
          price_data: {
            currency: 'jpy',
            unit_amount: 500,
            product_data: { name: '<script>alert(1)</script> & co' },
          },
          quantity: 1,
        },
      ],
    });
    const response = await page(`/checkout/${session.id}`);
    const html = await response.text();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(html).toContain('Stripe Checkout (sandbox)');
    expect(html).toContain('¥500');
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62; &#38; co');
    expect(html).toContain('id="pay"');
  });

  it('pays and redirects to success_url with the session id filled in', async () => {
    sandbox.setWebhookTarget({ url: receiver.url });
    const session = await stripe.checkout.sessions.create(
      priced('usd', 50, {
        success_url: 'https://example.com/return?session={CHECKOUT_SESSION_ID}',
        cancel_url: 'https://example.com/cancel',
      }),
    );
    const response = await page(`/checkout/${session.id}/pay`, 'POST');
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe(`https://example.com/return?session=${session.id}`);
    expect(sandbox.getSession(session.id)?.payment_status).toBe('paid');
    await sandbox.flushWebhooks();
    expect(sandbox.webhookDeliveries.map((d) => d.type)).toEqual(['checkout.session.completed']);
    sandbox.setWebhookTarget(undefined);

    const after = await (await page(`/checkout/${session.id}`)).text();
    expect(after).toContain('Paid');
    expect(after).not.toContain('id="pay"');
  });

  it('cancel follows cancel_url and leaves the session open; without urls both return to the page', async () => {
    const withUrls = await stripe.checkout.sessions.create(
      priced('usd', 50, { success_url: 'https://example.com/ok', cancel_url: 'https://example.com/cancel' }),
    );
    const cancel = await page(`/checkout/${withUrls.id}/cancel`, 'POST');
    expect(cancel.status).toBe(303);
    expect(cancel.headers.get('location')).toBe('https://example.com/cancel');
    expect(sandbox.getSession(withUrls.id)?.status).toBe('open');

    const bare = await stripe.checkout.sessions.create(priced('usd', 50));
    const bareCancel = await page(`/checkout/${bare.id}/cancel`, 'POST');
    expect(bareCancel.headers.get('location')).toBe(`/checkout/${bare.id}`);
    const barePay = await page(`/checkout/${bare.id}/pay`, 'POST');
    expect(barePay.headers.get('location')).toBe(`/checkout/${bare.id}`);
    expect(sandbox.getSession(bare.id)?.status).toBe('complete');
  });

  it('answers 404 for an unknown session and shows an expired one without buttons', async () => {
    expect((await page('/checkout/cs_test_unknown')).status).toBe(404);
    expect((await page('/checkout/%3Cscript%3E')).status).toBe(404);
    const session = await stripe.checkout.sessions.create(priced('usd', 50));
    sandbox.lapse(session.id);
    const html = await (await page(`/checkout/${session.id}`)).text();
    expect(html).toContain('expired');
    expect(html).not.toContain('id="pay"');
    const pay = await page(`/checkout/${session.id}/pay`, 'POST');
    expect(pay.headers.get('location')).toBe(`/checkout/${session.id}`);
    expect(sandbox.getSession(session.id)?.status).toBe('expired');
  });
});

describe('Stripe sandbox: options', () => {
  it('refuses invalid options with a SandboxConfigError', async () => {
    await expect(startStripeSandbox({ port: -1 })).rejects.toBeInstanceOf(SandboxConfigError);
    await expect(startStripeSandbox({ apiKey: '' })).rejects.toThrow(/startStripeSandbox: invalid options/);
  });

  it('accepts a custom key and webhook secret', async () => {
    const custom = await startStripeSandbox({ apiKey: 'sk_test_custom', webhookSecret: 'whsec_custom' });
    try {
      const client = new Stripe('sk_test_custom', {
        ...custom.sdkOptions,
        maxNetworkRetries: 0,
        telemetry: false,
      });
      const session = await client.checkout.sessions.create(priced('usd', 50));
      expect(custom.getSession(session.id)?.status).toBe('open');
      expect(custom.webhookSecret).toBe('whsec_custom');
      expect(custom.sdkOptions).toEqual({ host: '127.0.0.1', port: custom.port, protocol: 'http' });
    } finally {
      await custom.close();
    }
  });
});
