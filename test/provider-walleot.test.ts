import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ProviderError } from '../src/core/errors.js';
import type { Logger } from '../src/core/logger.js';
import { parseMoney } from '../src/core/money/index.js';
import type { Charge, CreatePaymentOptions } from '../src/core/provider.js';
import { WalleotProvider, type WalleotProviderOptions } from '../src/providers/walleot/provider.js';
import { startWalleotSandbox, type WalleotSandbox } from '../src/sandbox/walleot.js';

interface LogLine {
  level: keyof Logger;
  message: string;
  fields: Record<string, unknown> | undefined;
}

function capturingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: keyof Logger) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

let sandbox: WalleotSandbox;
const providers: Array<WalleotProvider<string>> = [];

function provider(overrides: Partial<WalleotProviderOptions> = {}): WalleotProvider<string> {
  const p = new WalleotProvider({ apiKey: sandbox.apiKey, baseUrl: sandbox.baseUrl, ...overrides });
  providers.push(p);
  return p;
}

function charge(amount: string, currency: string, description = 'Tool call: add'): Charge {
  return { money: parseMoney(amount, currency), description, intentId: 'int_test' };
}

const createOptions: CreatePaymentOptions = { idempotencyKey: 'idem_int_test_1', metadata: { tool: 'add' } };

async function caught(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }
  throw new Error('expected a ProviderError');
}

function apiRequests(method: string) {
  return sandbox.requests.entries.filter((r) => r.method === method && r.path.startsWith('/v1/'));
}

beforeAll(async () => {
  sandbox = await startWalleotSandbox();
});
afterEach(() => sandbox.reset());
afterAll(async () => {
  await Promise.all(providers.map((p) => p.close()));
  await sandbox.close();
});

describe('createPayment', () => {
  it('sends 0.29 USD as 29 cents, lowercase, with bearer auth and the idempotency key', async () => {
    const walleot = provider();
    const created = await walleot.createPayment(charge('0.29', 'USD'), createOptions);
    expect(created).toMatchObject({ status: 'pending', rawStatus: 'pending' });
    expect(created.action).toEqual({
      kind: 'redirect',
      url: `${sandbox.origin}/checkout/${created.paymentId}`,
    });
    expect(sandbox.getSession(created.paymentId)).toMatchObject({ amount: 29, currency: 'usd' });

    const [request] = apiRequests('POST');
    expect(request?.path).toBe('/v1/sessions');
    expect(JSON.parse(request!.body)).toEqual({ amount: 29, currency: 'usd', description: 'Tool call: add' });
    expect(request!.headers['authorization']).toBe(`Bearer ****${sandbox.apiKey.slice(-4)}`);
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.headers['idempotency-key']).toBe('idem_int_test_1');
  });

  it('sends 1.00 USDC as 100 cents of usdc', async () => {
    const created = await provider().createPayment(charge('1.00', 'USDC'), createOptions);
    expect(JSON.parse(apiRequests('POST')[0]!.body)).toMatchObject({ amount: 100, currency: 'usdc' });
    expect(sandbox.getSession(created.paymentId)).toMatchObject({ amount: 100, currency: 'usdc' });
  });

  it('refuses a charge it cannot take before any request', async () => {
    const error = await caught(provider().createPayment(charge('1.000001', 'USDC'), createOptions));
    expect(error.code).toBe('invalid_request');
    expect(error.message).toMatch(/whole cents/);
    expect(sandbox.requests.entries).toEqual([]);
  });

  it('rejects an answer without sessionId or url as malformed_response', async () => {
    sandbox.fail({ status: 200, body: { sessionId: 'sess_1' } });
    expect((await caught(provider().createPayment(charge('0.29', 'USD'), createOptions))).code).toBe(
      'malformed_response',
    );
    sandbox.fail({ status: 200, body: { sessionId: 'sess_1', url: 'javascript:alert(1)' } });
    expect((await caught(provider().createPayment(charge('0.29', 'USD'), createOptions))).code).toBe(
      'malformed_response',
    );
  });

  it('accepts extra fields in the create answer', async () => {
    sandbox.fail({
      status: 201,
      body: { sessionId: 'sess_extra', url: 'https://pay.walleot.com/c/x', livemode: false },
    });
    const created = await provider().createPayment(charge('0.29', 'USD'), createOptions);
    expect(created).toMatchObject({
      paymentId: 'sess_extra',
      action: { kind: 'redirect', url: 'https://pay.walleot.com/c/x' },
    });
  });
});

describe('getPayment', () => {
  it('maps every Walleot status', async () => {
    const walleot = provider();
    const { paymentId } = await walleot.createPayment(charge('0.29', 'USD'), createOptions);
    expect(await walleot.getPayment(paymentId)).toEqual({
      paymentId,
      status: 'pending',
      rawStatus: 'pending',
    });
    const expected = { paid: 'paid', failed: 'failed', expired: 'expired', cancelled: 'canceled' } as const;
    for (const [raw, status] of Object.entries(expected)) {
      sandbox.setStatus(paymentId, raw as keyof typeof expected);
      expect(await walleot.getPayment(paymentId)).toEqual({ paymentId, status, rawStatus: raw });
    }
  });

  it('sees a payment made on the checkout page, and expiry on the sandbox clock', async () => {
    const walleot = provider();
    const paid = await walleot.createPayment(charge('0.29', 'USD'), createOptions);
    expect(paid.action.kind).toBe('redirect');
    const url = paid.action.kind === 'redirect' ? paid.action.url : '';
    await fetch(`${url}/pay`, { method: 'POST', redirect: 'manual' });
    expect((await walleot.getPayment(paid.paymentId)).status).toBe('paid');

    const lapsed = await walleot.createPayment(charge('0.29', 'USD'), createOptions);
    sandbox.clock.advance(1800);
    expect((await walleot.getPayment(lapsed.paymentId)).status).toBe('expired');
  });

  it('is paid at the first poll with auto-pay (pre-approved credits)', async () => {
    const walleot = provider();
    sandbox.setAutoPay('first_poll');
    const { paymentId } = await walleot.createPayment(charge('0.05', 'USD'), createOptions);
    expect((await walleot.getPayment(paymentId)).status).toBe('paid');
  });

  it('maps an undocumented or missing status to unknown and logs a warning', async () => {
    const logger = capturingLogger();
    const walleot = provider({ logger });
    sandbox.fail({ status: 200, body: { status: 'on_hold' } });
    expect(await walleot.getPayment('sess_1')).toEqual({
      paymentId: 'sess_1',
      status: 'unknown',
      rawStatus: 'on_hold',
    });
    expect(logger.lines.some((l) => l.level === 'warn' && l.fields?.['rawStatus'] === 'on_hold')).toBe(true);
    sandbox.fail({ status: 200, body: {} });
    expect((await walleot.getPayment('sess_1')).status).toBe('unknown');
    sandbox.fail({ status: 200, body: { status: 7 } });
    expect((await caught(walleot.getPayment('sess_1'))).code).toBe('malformed_response');
  });

  it('reports an unknown session as not_found', async () => {
    const error = await caught(provider().getPayment('sess_missing'));
    expect(error).toMatchObject({ code: 'not_found', status: 404, retryable: false });
    expect(error.message).toContain('No such session');
  });
});

describe('refuseCharge and capabilities', () => {
  it('takes whole cents in configured currencies and never rounds', () => {
    const walleot = provider();
    expect(walleot.refuseCharge(parseMoney('0.01', 'USD'))).toBeUndefined();
    expect(walleot.refuseCharge(parseMoney('1.00', 'USDC'))).toBeUndefined();
    expect(walleot.refuseCharge(parseMoney('0.01', 'USDC'))).toBeUndefined();
    expect(walleot.refuseCharge(parseMoney('1.000001', 'USDC'))).toMatch(/whole cents/);
    expect(walleot.refuseCharge(parseMoney('0.005', 'USDC'))).toMatch(/whole cents/);
    expect(walleot.refuseCharge(parseMoney('5', 'EUR'))).toMatch(/USD, USDC only, not EUR/);
    expect(walleot.refuseCharge(parseMoney('1000000.01', 'USD'))).toMatch(/maximum/);
    expect(provider({ currencies: ['eur'] }).refuseCharge(parseMoney('5', 'EUR'))).toBeUndefined();
  });

  it('describes Walleot: no fee, instant, polled, 1 cent minimum per currency', () => {
    const { capabilities, id } = provider();
    expect(id).toBe('walleot');
    expect(capabilities).toMatchObject({
      label: 'Walleot balance',
      currencies: ['USD', 'USDC'],
      fee: { percentBps: 0, fixedMinor: 0, label: 'no fee' },
      instant: true,
      webhooks: false,
      returnRedirect: false,
      refunds: false,
      cancel: false,
      statusReadsPerMinute: 1000,
    });
    expect(capabilities.limits['USD']).toEqual({ min: 1, max: 100_000_000 });
    expect(capabilities.limits['USDC']).toEqual({ min: 10_000, max: 1_000_000_000_000 });
    expect(provider({ id: 'credits' }).id).toBe('credits');
  });
});

describe('configuration', () => {
  it('needs an API key and never prints it', () => {
    for (const apiKey of [undefined, '', '   ']) {
      expect(() => new WalleotProvider({ apiKey })).toThrow(ConfigError);
      expect(() => new WalleotProvider({ apiKey })).toThrow(/needs apiKey \(set WALLEOT_API_KEY\)/);
    }
    const secret = 'sk_live_has space_123';
    try {
      new WalleotProvider({ apiKey: secret });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).not.toContain('has space');
    }
  });

  it('refuses bad options with a ConfigError that names the fix', () => {
    const key = 'sk_test_config_check_1';
    expect(() => new WalleotProvider({ apiKey: key, baseUrl: 'ftp://x' })).toThrow(/http\(s\) URL/);
    expect(() => new WalleotProvider({ apiKey: key, baseUrl: 'not a url' })).toThrow(ConfigError);
    expect(() => new WalleotProvider({ apiKey: key, baseUrl: 'https://u:p@api.walleot.com/v1' })).toThrow(
      /credentials/,
    );
    expect(() => new WalleotProvider({ apiKey: key, currencies: ['XXX'] })).toThrow(/unknown currency "XXX"/);
    expect(() => new WalleotProvider({ apiKey: key, currencies: ['JPY'] })).toThrow(/JPY has no cents/);
    expect(() => new WalleotProvider({ apiKey: key, currencies: [] })).toThrow(ConfigError);
    expect(() => new WalleotProvider({ apiKey: key, timeoutMs: -1 })).toThrow(/timeoutMs/);
    expect(() => new WalleotProvider({ apiKey: key, maxRetries: 1.5 })).toThrow(/maxRetries/);
    expect(() => new WalleotProvider({ apiKey: key, timeoutMs: 0 })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining(key) }),
    );
  });
});

describe('faults', () => {
  it('retries a GET after a transient 500', async () => {
    const walleot = provider();
    const { paymentId } = await walleot.createPayment(charge('0.29', 'USD'), createOptions);
    sandbox.fail({ status: 500 });
    expect((await walleot.getPayment(paymentId)).status).toBe('pending');
    expect(apiRequests('GET')).toHaveLength(2);
  });

  it('gives up a GET after maxRetries with provider_unavailable', async () => {
    sandbox.fail({ status: 503, count: 5 });
    const error = await caught(provider({ maxRetries: 2 }).getPayment('sess_1'));
    expect(error).toMatchObject({ code: 'provider_unavailable', status: 503, retryable: true });
    expect(apiRequests('GET')).toHaveLength(3);
  });

  it('does not retry a create after a 500: exactly one session request', async () => {
    sandbox.fail({ status: 500 });
    const error = await caught(provider().createPayment(charge('0.29', 'USD'), createOptions));
    expect(error).toMatchObject({ code: 'provider_unavailable', status: 500 });
    expect(error.message).toContain('server_error');
    expect(apiRequests('POST')).toHaveLength(1);
  });

  it('honours Retry-After on a 429, then succeeds', async () => {
    const logger = capturingLogger();
    sandbox.fail({ status: 429, headers: { 'Retry-After': '1' } });
    const created = await provider({ logger }).createPayment(charge('0.29', 'USD'), createOptions);
    expect(created.status).toBe('pending');
    expect(apiRequests('POST')).toHaveLength(2);
    const retry = logger.lines.find((l) => l.message === 'walleot retrying');
    expect(retry?.fields).toMatchObject({ method: 'POST', delayMs: 1000, reason: 'rate_limited' });
  });

  it('reports a long rate-limit wait as rate_limited with retryAfterMs instead of waiting', async () => {
    sandbox.fail({ status: 429, headers: { 'Retry-After': '60' } });
    const error = await caught(provider().getPayment('sess_1'));
    expect(error).toMatchObject({ code: 'rate_limited', status: 429, retryAfterMs: 60_000, retryable: true });
    expect(apiRequests('GET')).toHaveLength(1);
  });

  it('maps the stand-in exceeding its real per-minute limit to rate_limited', async () => {
    const limited = await startWalleotSandbox({ limits: { createsPerMinute: 1 } });
    try {
      const walleot = provider({ baseUrl: limited.baseUrl, apiKey: limited.apiKey });
      await walleot.createPayment(charge('0.29', 'USD'), createOptions);
      const error = await caught(walleot.createPayment(charge('0.29', 'USD'), createOptions));
      expect(error.code).toBe('rate_limited');
      expect(error.retryAfterMs).toBeGreaterThan(0);
      expect(limited.requests.entries).toHaveLength(2);
    } finally {
      await limited.close();
    }
  });

  it('times out a hanging GET with a small timeoutMs', async () => {
    sandbox.fail({ kind: 'hang', count: 5 });
    const error = await caught(provider({ timeoutMs: 150, maxRetries: 1 }).getPayment('sess_1'));
    expect(error).toMatchObject({ code: 'timeout', retryable: true });
    expect(apiRequests('GET')).toHaveLength(2);
  });

  it('does not retry a create that timed out (it may have been processed)', async () => {
    sandbox.fail({ kind: 'hang' });
    const error = await caught(
      provider({ timeoutMs: 150 }).createPayment(charge('0.29', 'USD'), createOptions),
    );
    expect(error.code).toBe('timeout');
    expect(apiRequests('POST')).toHaveLength(1);
  });

  it('reports a body that is not JSON as malformed_response', async () => {
    sandbox.fail({ kind: 'malformed' });
    const error = await caught(provider().createPayment(charge('0.29', 'USD'), createOptions));
    expect(error).toMatchObject({ code: 'malformed_response', retryable: true });
    sandbox.fail({ kind: 'malformed' });
    expect((await caught(provider().getPayment('sess_1'))).code).toBe('malformed_response');
  });

  it('maps 401 to auth_failed and 400/402 to invalid_request', async () => {
    const wrongKey = 'sk_test_wrong_key_abcdef123';
    const error = await caught(provider({ apiKey: wrongKey }).getPayment('sess_1'));
    expect(error).toMatchObject({ code: 'auth_failed', status: 401, retryable: false });
    expect(apiRequests('GET')).toHaveLength(1);

    sandbox.fail({ status: 402 });
    expect((await caught(provider().createPayment(charge('0.29', 'USD'), createOptions))).code).toBe(
      'invalid_request',
    );
    sandbox.fail({
      status: 400,
      body: { error: { type: 'invalid_request', message: 'amount must be positive' } },
    });
    const invalid = await caught(provider().createPayment(charge('0.29', 'USD'), createOptions));
    expect(invalid).toMatchObject({ code: 'invalid_request', status: 400 });
    expect(invalid.message).toContain('amount must be positive');
  });

  it('reports a refused connection as provider_unavailable', async () => {
    const gone = await startWalleotSandbox();
    const baseUrl = gone.baseUrl;
    await gone.close();
    const walleot = provider({ baseUrl, maxRetries: 1 });
    expect((await caught(walleot.getPayment('sess_1'))).code).toBe('provider_unavailable');
    const error = await caught(walleot.createPayment(charge('0.29', 'USD'), createOptions));
    expect(error).toMatchObject({ code: 'provider_unavailable', retryable: true });
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('keeps the API key out of every error and log line, even when the provider echoes it', async () => {
    const apiKey = 'sk_test_secret_echo_9f8e7d';
    const echoing = await startWalleotSandbox({ apiKey });
    const logger = capturingLogger();
    try {
      const walleot = provider({ apiKey, baseUrl: echoing.baseUrl, logger, maxRetries: 0 });
      const impatient = provider({ apiKey, baseUrl: echoing.baseUrl, logger, timeoutMs: 150, maxRetries: 0 });
      const errors: ProviderError[] = [];
      echoing.fail({
        status: 400,
        body: { error: { type: 'invalid_request', message: `bad key ${apiKey}` } },
      });
      errors.push(await caught(walleot.createPayment(charge('0.29', 'USD'), createOptions)));
      echoing.fail({ status: 500 });
      errors.push(await caught(walleot.getPayment('sess_1')));
      echoing.fail({ kind: 'hang' });
      errors.push(await caught(impatient.getPayment('sess_1')));
      echoing.fail({ kind: 'malformed' });
      errors.push(await caught(walleot.getPayment('sess_1')));
      errors.push(await caught(provider({ apiKey: `${apiKey}x`, baseUrl: echoing.baseUrl }).getPayment('s')));
      expect(errors.map((e) => e.code)).toEqual([
        'invalid_request',
        'provider_unavailable',
        'timeout',
        'malformed_response',
        'auth_failed',
      ]);
      expect(errors[0]!.message).toContain('bad key [redacted]');
      for (const error of errors) {
        const text = [
          error.message,
          error.userMessage,
          String(error),
          error.stack,
          JSON.stringify(error),
        ].join('\n');
        expect(text).not.toContain(apiKey);
      }
      expect(logger.lines.length).toBeGreaterThan(0);
      expect(JSON.stringify(logger.lines)).not.toContain(apiKey);
    } finally {
      await echoing.close();
    }
  });
});

describe('logging and lifecycle', () => {
  it('debug-logs each interaction with method, path, status and duration', async () => {
    const logger = capturingLogger();
    const walleot = provider({ logger });
    const { paymentId } = await walleot.createPayment(charge('0.29', 'USD'), createOptions);
    await walleot.getPayment(paymentId);
    const requests = logger.lines.filter((l) => l.level === 'debug' && l.message === 'walleot request');
    expect(requests.map((l) => [l.fields?.['method'], l.fields?.['path'], l.fields?.['status']])).toEqual([
      ['POST', '/v1/sessions', 200],
      ['GET', `/v1/sessions/${paymentId}`, 200],
    ]);
    for (const line of requests) expect(typeof line.fields?.['durationMs']).toBe('number');
  });

  it('closes its connection pool, and closing twice is fine', async () => {
    const walleot = new WalleotProvider({ apiKey: sandbox.apiKey, baseUrl: sandbox.baseUrl });
    await walleot.createPayment(charge('0.29', 'USD'), createOptions);
    await walleot.close();
    await walleot.close();
    const error = await caught(walleot.getPayment('sess_1'));
    expect(error.code).toBe('provider_unavailable');
    expect(error.message).toContain('closed');
  });
});
