import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, ProviderError, WebhookError } from '../src/core/errors.js';
import type { Logger } from '../src/core/logger.js';
import { type Money, money, parseMoney } from '../src/core/money/index.js';
import type { Charge, CreatePaymentOptions } from '../src/core/provider.js';
import {
  fromStripeAmount,
  StripeProvider,
  type StripeProviderOptions,
  toStripeAmount,
} from '../src/providers/stripe/provider.js';
import { type StripeSandbox, startStripeSandbox } from '../src/sandbox/stripe.js';

interface Receiver {
  url: string;
  received: Array<{ body: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const received: Receiver['received'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function recordingLogger(): Logger & { lines: Array<{ level: string; message: string; fields?: unknown }> } {
  const lines: Array<{ level: string; message: string; fields?: unknown }> = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, fields });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

let sandbox: StripeSandbox;
let receiver: Receiver;
let logger: ReturnType<typeof recordingLogger>;
// `<string>`: built from options whose `id` may be any string, so the id is not a literal.
let provider: StripeProvider<string>;

function makeProvider(overrides: Partial<StripeProviderOptions> = {}, stripe: Stripe.StripeConfig = {}) {
  return new StripeProvider({
    apiKey: sandbox.apiKey,
    webhookSecret: sandbox.webhookSecret,
    stripe: { ...sandbox.sdkOptions, maxNetworkRetries: 0, timeout: 5000, ...stripe },
    logger,
    ...overrides,
  });
}

let counter = 0;
function charge(price: Money, description = 'Tool call: add'): Charge {
  counter += 1;
  return { money: price, description, intentId: `intent_${counter}` };
}
function createOptions(c: Charge, extra: Partial<CreatePaymentOptions> = {}): CreatePaymentOptions {
  return { idempotencyKey: `payrouter:${c.intentId}:create`, metadata: { tool: 'add' }, ...extra };
}

beforeAll(async () => {
  sandbox = await startStripeSandbox();
  receiver = await startReceiver();
});

afterAll(async () => {
  await sandbox.close();
  await receiver.close();
});

beforeEach(() => {
  sandbox.reset();
  receiver.received.length = 0;
  logger = recordingLogger();
  provider = makeProvider();
});

async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ProviderError) return error;
    throw error;
  }
  throw new Error('expected a ProviderError');
}

describe('StripeProvider: configuration and capabilities', () => {
  it('needs an API key and names the fix without echoing any key', () => {
    expect(() => new StripeProvider({ apiKey: '' })).toThrow(ConfigError);
    expect(() => new StripeProvider({ apiKey: '' })).toThrow(/STRIPE_SECRET_KEY/);
    expect(() => new StripeProvider({} as StripeProviderOptions)).toThrow(ConfigError);
    const publishable = 'pk_test_51Hpublishablekey';
    let message = '';
    try {
      new StripeProvider({ apiKey: publishable });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/publishable/);
    expect(message).not.toContain(publishable);
  });

  it('refuses currencies Stripe does not support, bad options and blank webhook secrets', () => {
    expect(() => makeProvider({ currencies: ['usd', 'usdc'] })).toThrow(/usdc/);
    expect(() => makeProvider({ webhookSecret: '  ' })).toThrow(ConfigError);
    expect(() => makeProvider({}, { notAnOption: true } as Stripe.StripeConfig)).toThrow(ConfigError);
    expect(() => makeProvider({ id: 'bad id!' })).toThrow(ConfigError);
  });

  it('describes itself: card checkout, fees, limits per currency in payrouter minor units', () => {
    const caps = provider.capabilities;
    expect(provider.id).toBe('stripe');
    expect(caps.label).toBe('Card (Stripe Checkout)');
    expect(caps.fee).toEqual({ percentBps: 290, fixedMinor: 30, label: '2.9% + 30¢' });
    expect(caps).toMatchObject({
      instant: false,
      webhooks: true,
      returnRedirect: true,
      refunds: true,
      cancel: true,
      statusReadsPerMinute: 1200,
    });
    expect(caps.currencies).toContain('USD');
    expect(caps.currencies).toContain('JPY');
    expect(caps.currencies).not.toContain('USDC');
    expect(caps.limits['USD']).toEqual({ min: 50, max: 99_999_999 });
    expect(caps.limits['GBP']).toEqual({ min: 30, max: 99_999_999 });
    expect(caps.limits['JPY']).toEqual({ min: 50, max: 99_999_999 });
    expect(caps.limits['HUF']?.min).toBe(17_500);
    // ISK: ISO has no decimals, Stripe's unit is hundredths; MGA the other way round.
    expect(caps.limits['ISK']).toEqual({ min: 1, max: 999_999 });
    expect(caps.limits['MGA']).toEqual({ min: 100, max: 9_999_999_900 });
    expect(caps.limits['KWD']).toEqual({ min: 10, max: 99_999_990 });
    expect(makeProvider({ webhookSecret: undefined }).capabilities.webhooks).toBe(false);
    expect(makeProvider({ currencies: ['eur', 'USD'], id: 'stripe_eu' }).capabilities.currencies).toEqual([
      'EUR',
      'USD',
    ]);
  });
});

describe('StripeProvider: amounts', () => {
  it('converts payrouter minor units to Stripe units exactly', () => {
    expect(toStripeAmount(parseMoney('0.50', 'USD'))).toBe(50);
    expect(toStripeAmount(parseMoney('500', 'JPY'))).toBe(500);
    expect(toStripeAmount(parseMoney('5.120', 'KWD'))).toBe(5120);
    expect(toStripeAmount(parseMoney('5.125', 'KWD'))).toBeUndefined();
    expect(toStripeAmount(parseMoney('5', 'ISK'))).toBe(500);
    expect(toStripeAmount(money(1500, 'MGA'))).toBe(15);
    expect(toStripeAmount(money(1550, 'MGA'))).toBeUndefined();
    expect(toStripeAmount(parseMoney('1', 'USDC'))).toBeUndefined();
  });

  it('round-trips every convertible amount', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('USD', 'EUR', 'JPY', 'KWD', 'ISK', 'MGA', 'HUF', 'BHD'),
        fc.integer({ min: 1, max: 10_000_000 }),
        (currency, minor) => {
          const m = money(minor, currency);
          const amount = toStripeAmount(m);
          if (amount === undefined) return;
          expect(Number.isSafeInteger(amount)).toBe(true);
          expect(fromStripeAmount(amount, currency)).toEqual(m);
        },
      ),
    );
  });

  it.each([
    ['0.10', 'USD', /minimum/],
    ['49', 'JPY', /minimum/],
    ['0.29', 'GBP', /minimum/],
    ['5.125', 'KWD', /end in 0/],
    ['1000000.00', 'USD', /maximum/],
    ['1', 'USDC', /does not support/],
  ])('refuses %s %s', (amount, currency, reason) => {
    expect(provider.refuseCharge(parseMoney(amount, currency))).toMatch(reason);
  });

  it.each([
    ['0.50', 'USD'],
    ['50', 'JPY'],
    ['0.30', 'GBP'],
    ['5.120', 'KWD'],
    ['999999.99', 'USD'],
    ['999999', 'ISK'],
  ])('accepts %s %s', (amount, currency) => {
    expect(provider.refuseCharge(parseMoney(amount, currency))).toBeUndefined();
  });

  it('refuses currencies it was not configured for', () => {
    const usdOnly = makeProvider({ currencies: ['USD'] });
    expect(usdOnly.refuseCharge(parseMoney('1', 'EUR'))).toMatch(/not configured for EUR/);
  });

  it('sends a JPY price to Stripe as whole yen and KWD with three decimals', async () => {
    const yen = charge(parseMoney('500', 'JPY'));
    const created = await provider.createPayment(yen, createOptions(yen));
    expect(sandbox.requests.entries[0]?.body).toContain('line_items[0][price_data][unit_amount]=500');
    expect(sandbox.requests.entries[0]?.body).toContain('line_items[0][price_data][currency]=jpy');
    expect(sandbox.getSession(created.paymentId)).toMatchObject({ amount_total: 500, currency: 'jpy' });

    const dinar = charge(parseMoney('5.120', 'KWD'));
    const kwd = await provider.createPayment(dinar, createOptions(dinar));
    expect(sandbox.getSession(kwd.paymentId)).toMatchObject({ amount_total: 5120, currency: 'kwd' });

    const tooPrecise = charge(parseMoney('5.125', 'KWD'));
    const refused = await providerError(provider.createPayment(tooPrecise, createOptions(tooPrecise)));
    expect(refused.code).toBe('invalid_request');
    expect(sandbox.listSessions()).toHaveLength(2);
  });
});

describe('StripeProvider: payments against the sandbox', () => {
  it('logs one debug line per request, like Walleot: method, path, status, latency; never a secret', async () => {
    const c = charge(parseMoney('0.50', 'USD'));
    const created = await provider.createPayment(c, createOptions(c));
    await provider.getPayment(created.paymentId);
    await providerError(provider.getPayment('cs_test_doesnotexist'));
    const requests = logger.lines.filter((l) => l.level === 'debug' && l.message === 'stripe request');
    expect(requests.map((l) => l.fields)).toEqual([
      {
        provider: 'stripe',
        method: 'POST',
        path: '/v1/checkout/sessions',
        status: 200,
        requestId: expect.stringMatching(/^req_/),
        durationMs: expect.any(Number),
      },
      {
        provider: 'stripe',
        method: 'GET',
        path: `/v1/checkout/sessions/${created.paymentId}`,
        status: 200,
        requestId: expect.stringMatching(/^req_/),
        durationMs: expect.any(Number),
      },
      {
        provider: 'stripe',
        method: 'GET',
        path: '/v1/checkout/sessions/cs_test_doesnotexist',
        status: 404,
        requestId: expect.stringMatching(/^req_/),
        durationMs: expect.any(Number),
      },
    ]);
    const text = JSON.stringify(logger.lines);
    expect(text).not.toContain(sandbox.apiKey);
    expect(text).not.toContain(sandbox.webhookSecret);
  });

  it('creates a Checkout Session carrying the intent, key, metadata, return urls and expiry', async () => {
    const c = charge(parseMoney('0.50', 'USD'));
    const expiresAt = Date.now() + 2 * 3600 * 1000;
    const created = await provider.createPayment(
      c,
      createOptions(c, {
        returnUrls: {
          success: 'https://example.com/ok?s={CHECKOUT_SESSION_ID}',
          cancel: 'https://example.com/no',
        },
        expiresAt,
      }),
    );
    expect(created.paymentId).toMatch(/^cs_test_/);
    expect(created.action).toEqual({
      kind: 'redirect',
      url: `${sandbox.origin}/checkout/${created.paymentId}`,
    });
    expect(created.status).toBe('pending');
    expect(created.rawStatus).toBe('open/unpaid');
    expect(created.expiresAt).toBe(Math.floor(expiresAt / 1000) * 1000);

    const session = sandbox.getSession(created.paymentId);
    expect(session?.metadata).toEqual({ tool: 'add', payrouter_intent: c.intentId });
    expect(session?.client_reference_id).toBe(c.intentId);
    expect(session?.success_url).toBe('https://example.com/ok?s={CHECKOUT_SESSION_ID}');
    expect(session?.cancel_url).toBe('https://example.com/no');
    expect(sandbox.requests.entries[0]?.headers['idempotency-key']).toBe(`payrouter:${c.intentId}:create`);
    expect(sandbox.requests.entries[0]?.body).toContain('line_items[0][price_data][product_data][name]=Tool');
  });

  it('sends expires_at from the plan as given (whole seconds) and leaves it out when not given', async () => {
    const c = charge(parseMoney('1', 'USD'));
    const expiresAt = Date.now() + 45 * 60_000 + 999;
    const created = await provider.createPayment(c, createOptions(c, { expiresAt }));
    expect(sandbox.getSession(created.paymentId)?.expires_at).toBe(Math.floor(expiresAt / 1000));
    expect(sandbox.requests.entries.at(-1)?.body).toContain(`expires_at=${Math.floor(expiresAt / 1000)}`);

    const d = charge(parseMoney('1', 'USD'));
    await provider.createPayment(d, createOptions(d));
    expect(sandbox.requests.entries.at(-1)?.body).not.toContain('expires_at');
  });

  it('follows a session through every state', async () => {
    const states: string[] = [];
    const start = async () => {
      const c = charge(parseMoney('2.00', 'USD'));
      return (await provider.createPayment(c, createOptions(c))).paymentId;
    };
    const read = async (id: string) => {
      const state = await provider.getPayment(id);
      states.push(`${state.status} ${state.rawStatus}`);
      return state;
    };

    const card = await start();
    await read(card);
    sandbox.pay(card);
    await read(card);

    const asyncOk = await start();
    sandbox.payAsync(asyncOk);
    await read(asyncOk);
    sandbox.payAsync(asyncOk, 'succeeded');
    await read(asyncOk);

    const asyncFail = await start();
    sandbox.payAsync(asyncFail, 'failed');
    await read(asyncFail);

    const canceled = await start();
    const cancel = await provider.cancelPayment(canceled);
    states.push(`cancel: ${cancel.status} ${cancel.rawStatus}`);
    const cancelAgain = await provider.cancelPayment(canceled);
    states.push(`cancel again: ${cancelAgain.status} ${cancelAgain.rawStatus}`);
    const cancelPaid = await provider.cancelPayment(card);
    states.push(`cancel paid: ${cancelPaid.status} ${cancelPaid.rawStatus}`);

    const lapsed = await start();
    sandbox.clock.advance(24 * 3600 + 1);
    await read(lapsed);

    expect(states).toEqual([
      'pending open/unpaid',
      'paid complete/paid',
      'pending complete/unpaid/processing',
      'paid complete/paid',
      'failed complete/unpaid/requires_payment_method',
      'cancel: expired expired/unpaid',
      'cancel again: expired expired/unpaid',
      'cancel paid: paid complete/paid',
      'expired expired/unpaid',
    ]);
    expect(logger.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('maps an unexpected status combination to unknown and warns', async () => {
    const c = charge(parseMoney('2.00', 'USD'));
    const created = await provider.createPayment(c, createOptions(c));
    const session = {
      ...sandbox.getSession(created.paymentId),
      status: 'complete',
      payment_status: 'no_payment_required',
    };
    sandbox.fail({ status: 200, body: session });
    const state = await provider.getPayment(created.paymentId);
    expect(state).toEqual({
      paymentId: created.paymentId,
      status: 'unknown',
      rawStatus: 'complete/no_payment_required',
    });
    expect(logger.lines.some((l) => l.level === 'warn' && l.message.includes('unexpected state'))).toBe(true);
  });

  it('refunds a paid session once, and refuses one with no payment', async () => {
    const c = charge(parseMoney('7.00', 'USD'));
    const { paymentId } = await provider.createPayment(c, createOptions(c));
    const unpaid = await providerError(provider.refundPayment(paymentId));
    expect(unpaid.code).toBe('invalid_request');

    sandbox.pay(paymentId);
    await provider.refundPayment(paymentId);
    await provider.refundPayment(paymentId);
    const refunds = sandbox.getRefunds(paymentId);
    expect(refunds).toHaveLength(1);
    expect(refunds[0]?.amount).toBe(700);
  });
});

describe('StripeProvider: retries and errors', () => {
  it('retries a timed-out create with the same key: one session, replayed', async () => {
    const retrying = makeProvider({}, { timeout: 300, maxNetworkRetries: 1 });
    // The first request executes but its answer comes after the client gave up.
    sandbox.fail({ delayMs: 450, pathIncludes: '/v1/checkout/sessions' });
    const c = charge(parseMoney('1.00', 'USD'));
    const created = await retrying.createPayment(c, createOptions(c));
    expect(sandbox.listSessions().map((s) => s.id)).toEqual([created.paymentId]);
    const posts = sandbox.requests.entries.filter((r) => r.method === 'POST');
    expect(posts).toHaveLength(2);
    expect(posts.map((r) => r.headers['idempotency-key'])).toEqual([
      `payrouter:${c.intentId}:create`,
      `payrouter:${c.intentId}:create`,
    ]);
  });

  it('lets the router retry after a timeout without a second session', async () => {
    const impatient = makeProvider({}, { timeout: 300, maxNetworkRetries: 0 });
    sandbox.fail({ delayMs: 450 });
    const c = charge(parseMoney('1.00', 'USD'));
    const options = createOptions(c, { expiresAt: Date.now() + 3600_000 });
    const timedOut = await providerError(impatient.createPayment(c, options));
    expect(timedOut.code).toBe('timeout');
    expect(timedOut.retryable).toBe(true);
    await vi.waitFor(() => expect(sandbox.listSessions()).toHaveLength(1), { timeout: 5000 });

    const retried = await impatient.createPayment(c, options);
    expect(sandbox.listSessions().map((s) => s.id)).toEqual([retried.paymentId]);
  });

  it.each<[string, Parameters<StripeSandbox['fail']>[0], string, number | undefined]>([
    ['401', { status: 401 }, 'auth_failed', 401],
    ['403', { status: 403 }, 'auth_failed', 403],
    ['429', { status: 429, headers: { 'Retry-After': '2' } }, 'rate_limited', 429],
    ['500', { status: 500 }, 'provider_unavailable', 500],
    ['409', { status: 409 }, 'provider_unavailable', 409],
    ['400', { status: 400 }, 'invalid_request', 400],
    ['invalid JSON', { kind: 'malformed' }, 'malformed_response', undefined],
    ['a hang', { kind: 'hang' }, 'timeout', undefined],
  ])('turns %s into a typed ProviderError', async (_label, fault, code, status) => {
    const quick = makeProvider({}, { timeout: 300, maxNetworkRetries: 0 });
    sandbox.fail(fault);
    const error = await providerError(quick.getPayment('cs_test_whatever'));
    expect(error.code).toBe(code);
    expect(error.providerId).toBe('stripe');
    expect(error.status).toBe(status);
    expect(error.message).not.toContain(sandbox.apiKey);
    if (code === 'rate_limited') expect(error.retryAfterMs).toBe(2000);
  });

  it('reports a wrong key as auth_failed without the key, an unknown session as not_found', async () => {
    const wrongKey = 'sk_test_wrong_key_abcdef';
    const wrong = makeProvider({ apiKey: wrongKey });
    const c = charge(parseMoney('1.00', 'USD'));
    const auth = await providerError(wrong.createPayment(c, createOptions(c)));
    expect(auth.code).toBe('auth_failed');
    expect(auth.retryable).toBe(false);
    expect(auth.message).not.toContain('abcdef');
    expect(auth.userMessage).toMatch(/credentials/);

    const missing = await providerError(provider.getPayment('cs_test_unknown'));
    expect(missing.code).toBe('not_found');
    expect(missing.status).toBe(404);
    expect((await providerError(provider.getPayment('../v1/refunds'))).code).toBe('not_found');
  });

  it('reports reuse of a key with other parameters as idempotency_conflict', async () => {
    const c = charge(parseMoney('1.00', 'USD'));
    await provider.createPayment(c, createOptions(c));
    const changed = { ...c, money: parseMoney('2.00', 'USD') };
    const error = await providerError(provider.createPayment(changed, createOptions(c)));
    expect(error.code).toBe('idempotency_conflict');
    expect(error.status).toBe(400);
  });

  it('digests idempotency keys longer than Stripe accepts, stably', async () => {
    const c = charge(parseMoney('1.00', 'USD'));
    const options = createOptions(c, { idempotencyKey: `payrouter:${'x'.repeat(300)}` });
    const first = await provider.createPayment(c, options);
    const again = await provider.createPayment(c, options);
    expect(again.paymentId).toBe(first.paymentId);
    const sent = sandbox.requests.entries.map((r) => r.headers['idempotency-key']);
    expect(sent[0]).toMatch(/^payrouter-sha256-[0-9a-f]{64}$/);
    expect(sent[1]).toBe(sent[0]);
  });

  it('refuses metadata keys Stripe would refuse before calling it', async () => {
    const c = charge(parseMoney('1.00', 'USD'));
    const error = await providerError(
      provider.createPayment(c, createOptions(c, { metadata: { 'a[b]': 'x' } })),
    );
    expect(error.code).toBe('invalid_request');
    expect(sandbox.requests.entries).toHaveLength(0);
  });
});

describe('StripeProvider: webhooks', () => {
  beforeEach(() => sandbox.setWebhookTarget({ url: receiver.url }));
  afterEach(() => sandbox.setWebhookTarget(undefined));

  const deliveries = async () => {
    await sandbox.flushWebhooks();
    return receiver.received.map((r) => ({ body: r.body, headers: r.headers as Record<string, string> }));
  };

  it('verifies and normalises the four checkout events', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const c = charge(parseMoney('3.00', 'USD'));
      ids.push((await provider.createPayment(c, createOptions(c))).paymentId);
    }
    const [paid, asyncOk, asyncFail, expired] = ids as [string, string, string, string];
    sandbox.pay(paid);
    sandbox.payAsync(asyncOk, 'succeeded');
    sandbox.payAsync(asyncFail, 'failed');
    await provider.cancelPayment(expired);

    const events = await Promise.all(
      (await deliveries()).map((d) => provider.parseWebhook(d.body, d.headers)),
    );
    expect(events.map((e) => [e?.type, e?.paymentId, e?.status, e?.rawStatus])).toEqual([
      ['checkout.session.completed', paid, 'paid', 'complete/paid'],
      ['checkout.session.completed', asyncOk, 'pending', 'complete/unpaid'],
      ['checkout.session.async_payment_succeeded', asyncOk, 'paid', 'complete/paid'],
      ['checkout.session.completed', asyncFail, 'pending', 'complete/unpaid'],
      ['checkout.session.async_payment_failed', asyncFail, 'failed', 'complete/unpaid'],
      ['checkout.session.expired', expired, 'expired', 'expired/unpaid'],
    ]);
    for (const event of events) {
      expect(event?.eventId).toMatch(/^evt_/);
      expect(event?.intentId).toMatch(/^intent_/);
    }
    expect(events[0]?.intentId).toBe(sandbox.getSession(paid)?.metadata?.['payrouter_intent']);
  });

  it('accepts a Uint8Array body and header names in any case', async () => {
    const c = charge(parseMoney('3.00', 'USD'));
    const { paymentId } = await provider.createPayment(c, createOptions(c));
    sandbox.pay(paymentId);
    const [delivery] = await deliveries();
    const event = await provider.parseWebhook(new TextEncoder().encode(delivery?.body), {
      'Stripe-Signature': delivery?.headers['stripe-signature'],
    });
    expect(event?.paymentId).toBe(paymentId);
  });

  it('rejects a wrong secret, a stale timestamp, a tampered body and a missing header', async () => {
    const c = charge(parseMoney('3.00', 'USD'));
    const { paymentId } = await provider.createPayment(c, createOptions(c));
    sandbox.pay(paymentId);
    const [delivery] = await deliveries();
    const body = delivery?.body ?? '';
    const headers = delivery?.headers ?? {};

    const otherSecret = 'whsec_some_other_endpoint';
    const wrongSecret = makeProvider({ webhookSecret: otherSecret });
    const stale = Stripe.webhooks.generateTestHeaderString({
      payload: body,
      secret: sandbox.webhookSecret,
      timestamp: Math.floor(Date.now() / 1000) - 600,
    });
    const cases: Array<[StripeProvider<string>, string, Record<string, string>, RegExp]> = [
      [wrongSecret, body, headers, /signature does not match/],
      [provider, body, { 'stripe-signature': stale }, /too old/],
      [provider, body.replace('"paid"', '"unpaid"'), headers, /signature does not match/],
      [provider, body, {}, /Stripe-Signature/],
      [makeProvider({ webhookSecret: undefined }), body, headers, /not configured/],
    ];
    for (const [p, raw, h, reason] of cases) {
      let caught: unknown;
      try {
        await p.parseWebhook(raw, h);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(WebhookError);
      expect((caught as WebhookError).message).toMatch(reason);
      expect((caught as WebhookError).message).not.toContain(sandbox.webhookSecret);
      expect((caught as WebhookError).message).not.toContain(otherSecret);
    }
  });

  it('returns null for a verified event of another type and rejects signed non-JSON', async () => {
    const payload = JSON.stringify({
      id: 'evt_123',
      object: 'event',
      type: 'customer.created',
      data: { object: { id: 'cus_1', object: 'customer' } },
    });
    const sign = (p: string) => ({
      'stripe-signature': Stripe.webhooks.generateTestHeaderString({
        payload: p,
        secret: sandbox.webhookSecret,
      }),
    });
    expect(await provider.parseWebhook(payload, sign(payload))).toBeNull();
    await expect(provider.parseWebhook('not json', sign('not json'))).rejects.toThrow(WebhookError);
    const notAnEvent = JSON.stringify({ hello: 'world' });
    await expect(provider.parseWebhook(notAnEvent, sign(notAnEvent))).rejects.toThrow(/not a Stripe event/);
  });
});
