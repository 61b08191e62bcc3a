import { afterAll, beforeAll, describe, expect } from 'vitest';
import { startWalleotSandbox, type WalleotSandbox } from '../src/sandbox/walleot.js';
import { it } from './support/fixture.js';

function api(
  target: WalleotSandbox,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  key: string | null = target.apiKey,
): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key !== null) headers['authorization'] = `Bearer ${key}`;
  return fetch(`${target.baseUrl}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

async function create(target: WalleotSandbox, body: unknown = { amount: 29, currency: 'usd' }) {
  const res = await api(target, 'POST', '/sessions', body);
  expect(res.status).toBe(200);
  return (await res.json()) as { sessionId: string; url: string };
}

async function statusOf(target: WalleotSandbox, id: string): Promise<string> {
  const res = await api(target, 'GET', `/sessions/${id}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { status: string }).status;
}

function control(target: WalleotSandbox, path: string, body?: unknown): Promise<Response> {
  return fetch(`${target.origin}/__test/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

describe('sessions API', () => {
  it('creates a session with a checkout url and reports it pending', async ({ walleotSandbox: sandbox }) => {
    const res = await api(sandbox, 'POST', '/sessions', { amount: 29, currency: 'usd', description: 'Add' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { sessionId: string; url: string };
    expect(body.sessionId).toMatch(/^sess_/);
    expect(body.url).toBe(`${sandbox.origin}/checkout/${body.sessionId}`);
    expect(await statusOf(sandbox, body.sessionId)).toBe('pending');
    expect(sandbox.getSession(body.sessionId)).toMatchObject({
      status: 'pending',
      amount: 29,
      currency: 'usd',
      description: 'Add',
    });
  });

  it('accepts usdc amounts in cents', async ({ walleotSandbox: sandbox }) => {
    const { sessionId } = await create(sandbox, { amount: 100, currency: 'usdc' });
    expect(sandbox.getSession(sessionId)).toMatchObject({ amount: 100, currency: 'usdc' });
  });

  it('rejects missing and wrong bearer keys with 401 in the error shape', async ({
    walleotSandbox: sandbox,
  }) => {
    for (const key of [null, 'sk_test_wrong_key_123']) {
      const res = await api(sandbox, 'POST', '/sessions', { amount: 29, currency: 'usd' }, key);
      expect(res.status).toBe(401);
      const body = (await res.json()) as { error: { type: string; message: string } };
      expect(body.error.type).toBe('unauthorized');
      expect(body.error.message).not.toContain('sk_test_wrong_key_123');
      expect(res.headers.get('x-ratelimit-limit')).toBe('100');
    }
    const res = await fetch(`${sandbox.baseUrl}/sessions/sess_x`, {
      headers: { authorization: 'Basic abc' },
    });
    expect(res.status).toBe(401);
    expect(sandbox.requests.entries.length).toBe(3);
  });

  it.for<[unknown, RegExp]>([
    [{ amount: 1.5, currency: 'usd' }, /amount must be a positive integer/],
    [{ amount: -5, currency: 'usd' }, /amount must be a positive integer/],
    [{ amount: 0, currency: 'usd' }, /amount must be a positive integer/],
    [{ amount: '29', currency: 'usd' }, /amount is required and must be a positive integer/],
    [{ currency: 'usd' }, /amount is required/],
    [{ amount: 29, currency: 'USD' }, /currency must be lowercase/],
    [{ amount: 29, currency: 'xyz' }, /currency must be a lowercase ISO 4217 code/],
    [{ amount: 29 }, /currency is required/],
    [{ amount: 29, currency: 'usd', description: 7 }, /description must be a string/],
    [[1, 2], /must be a JSON object/],
    ['{"amount": 29,', /must be valid JSON/],
    [{ amount: 150, currency: 'jpy' }, /not a whole number of jpy minor units/],
  ])('rejects %j with 400 invalid_request', async ([body, message], { walleotSandbox: sandbox }) => {
    const res = await api(sandbox, 'POST', '/sessions', body);
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: { type: string; message: string } };
    expect(json.error.type).toBe('invalid_request');
    expect(json.error.message).toMatch(message);
  });

  it('answers 404 for an unknown session or endpoint, 405 for a wrong method', async ({
    walleotSandbox: sandbox,
  }) => {
    const unknown = await api(sandbox, 'GET', '/sessions/sess_nope');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      error: { type: 'not_found', message: 'No such session: sess_nope' },
    });
    expect((await api(sandbox, 'GET', '/payments')).status).toBe(404);
    const wrongMethod = await api(sandbox, 'GET', '/sessions');
    expect(wrongMethod.status).toBe(405);
    expect(((await wrongMethod.json()) as { error: { type: string } }).error.type).toBe('invalid_request');
  });

  it('reports every status set through the control endpoint and the handle', async ({
    walleotSandbox: sandbox,
  }) => {
    const { sessionId } = await create(sandbox);
    for (const status of ['paid', 'failed', 'expired', 'cancelled', 'pending']) {
      const res = await control(sandbox, `sessions/${sessionId}/status`, { status });
      expect(res.status).toBe(200);
      expect(await statusOf(sandbox, sessionId)).toBe(status);
    }
    sandbox.setStatus(sessionId, 'failed');
    expect(await statusOf(sandbox, sessionId)).toBe('failed');
    expect((await control(sandbox, `sessions/${sessionId}/status`, { status: 'refunded' })).status).toBe(400);
    expect((await control(sandbox, 'sessions/sess_nope/status', { status: 'paid' })).status).toBe(404);
    expect(() => sandbox.setStatus('sess_nope', 'paid')).toThrow(/no session/);
  });

  it('expires pending sessions after the TTL on the sandbox clock, and only pending ones', async () => {
    const short = await startWalleotSandbox({ sessionTtlSeconds: 60 });
    try {
      const pending = await create(short);
      const paid = await create(short);
      short.setStatus(paid.sessionId, 'paid');
      const advanced = await control(short, 'clock', { advanceSeconds: 59 });
      expect(advanced.status).toBe(200);
      expect(await statusOf(short, pending.sessionId)).toBe('pending');
      short.clock.advance(1);
      expect(await statusOf(short, pending.sessionId)).toBe('expired');
      expect(await statusOf(short, paid.sessionId)).toBe('paid');
      expect((await control(short, 'clock', { advanceSeconds: 'soon' })).status).toBe(400);
    } finally {
      await short.close();
    }
  });

  it('auto-pays a pending session at its first status read when configured', async ({
    walleotSandbox: sandbox,
  }) => {
    const before = await create(sandbox);
    const config = await control(sandbox, 'config', { autoPay: 'first_poll' });
    expect(await config.json()).toEqual({ autoPay: 'first_poll' });
    expect(sandbox.getSession(before.sessionId)?.status).toBe('pending');
    expect(await statusOf(sandbox, before.sessionId)).toBe('paid');
    const cancelled = await create(sandbox);
    sandbox.setStatus(cancelled.sessionId, 'cancelled');
    expect(await statusOf(sandbox, cancelled.sessionId)).toBe('cancelled');

    sandbox.setAutoPay('off');
    const after = await create(sandbox);
    expect(await statusOf(sandbox, after.sessionId)).toBe('pending');
    expect((await control(sandbox, 'config', { autoPay: 'always' })).status).toBe(400);
  });

  it('resets sessions, faults and recorded requests', async ({ walleotSandbox: sandbox }) => {
    const { sessionId } = await create(sandbox);
    sandbox.fail({ status: 500 });
    const res = await control(sandbox, 'reset');
    expect(res.status).toBe(200);
    expect(sandbox.getSession(sessionId)).toBeUndefined();
    expect(sandbox.requests.entries).toEqual([]);
    expect((await api(sandbox, 'GET', `/sessions/${sessionId}`)).status).toBe(404);
  });
});

describe('rate limits', () => {
  let limited: WalleotSandbox;
  beforeAll(async () => {
    limited = await startWalleotSandbox({ limits: { createsPerMinute: 2, statusReadsPerMinute: 3 } });
  });
  afterAll(() => limited.close());

  it('sends X-RateLimit headers and answers 429 with Retry-After past the limit, per bucket', async () => {
    const first = await api(limited, 'POST', '/sessions', { amount: 1, currency: 'usd' });
    expect(first.headers.get('x-ratelimit-limit')).toBe('2');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('1');
    const reset = Number(first.headers.get('x-ratelimit-reset'));
    expect(Number.isInteger(reset)).toBe(true);
    expect(reset).toBeGreaterThan(limited.clock.nowSeconds());
    expect(reset - limited.clock.nowSeconds()).toBeLessThanOrEqual(60);
    const { sessionId } = (await first.json()) as { sessionId: string };

    // Invalid creates count too: the limit is on requests, not on sessions.
    const second = await api(limited, 'POST', '/sessions', { amount: -1, currency: 'usd' });
    expect(second.status).toBe(400);
    expect(second.headers.get('x-ratelimit-remaining')).toBe('0');

    const third = await api(limited, 'POST', '/sessions', { amount: 1, currency: 'usd' });
    expect(third.status).toBe(429);
    expect(((await third.json()) as { error: { type: string } }).error.type).toBe('rate_limited');
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(third.headers.get('x-ratelimit-remaining')).toBe('0');

    // Status reads have their own budget.
    for (let i = 0; i < 3; i++)
      expect((await api(limited, 'GET', `/sessions/${sessionId}`)).status).toBe(200);
    const read = await api(limited, 'GET', `/sessions/${sessionId}`);
    expect(read.status).toBe(429);
    expect(read.headers.get('x-ratelimit-limit')).toBe('3');

    // A new window on the sandbox clock restores the budget.
    limited.clock.advance(60);
    expect((await api(limited, 'POST', '/sessions', { amount: 1, currency: 'usd' })).status).toBe(200);
    expect((await api(limited, 'GET', `/sessions/${sessionId}`)).status).toBe(200);
  });
});

describe('fault injection', () => {
  it('answers an injected status with the Walleot error shape, or the given body, count times', async ({
    walleotSandbox: sandbox,
  }) => {
    const res = await control(sandbox, 'fail-next', { status: 500, count: 2 });
    expect(res.status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const failed = await api(sandbox, 'POST', '/sessions', { amount: 29, currency: 'usd' });
      expect(failed.status).toBe(500);
      expect(((await failed.json()) as { error: { type: string } }).error.type).toBe('server_error');
      expect(failed.headers.get('x-ratelimit-limit')).toBe('100');
    }
    await create(sandbox);

    sandbox.fail({ status: 402, body: { error: { type: 'insufficient_funds', message: 'Top up' } } });
    const custom = await api(sandbox, 'POST', '/sessions', { amount: 29, currency: 'usd' });
    expect(custom.status).toBe(402);
    expect(await custom.json()).toEqual({ error: { type: 'insufficient_funds', message: 'Top up' } });
  });

  it('adds Retry-After to an injected 429 unless given, and passes given headers', async ({
    walleotSandbox: sandbox,
  }) => {
    sandbox.fail({ status: 429 });
    const plain = await api(sandbox, 'GET', '/sessions/sess_x');
    expect(plain.status).toBe(429);
    expect(Number(plain.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    sandbox.fail({ status: 429, headers: { 'Retry-After': '7' } });
    expect((await api(sandbox, 'GET', '/sessions/sess_x')).headers.get('retry-after')).toBe('7');
  });

  it('answers 200 with a body that is not JSON for `malformed`', async ({ walleotSandbox: sandbox }) => {
    await control(sandbox, 'fail-next', { kind: 'malformed' });
    const res = await api(sandbox, 'POST', '/sessions', { amount: 29, currency: 'usd' });
    expect(res.status).toBe(200);
    await expect(res.json()).rejects.toThrow();
  });

  it('never answers for `hang`', async ({ walleotSandbox: sandbox }) => {
    await control(sandbox, 'fail-next', { kind: 'hang' });
    await expect(
      fetch(`${sandbox.baseUrl}/sessions/sess_x`, {
        headers: { authorization: `Bearer ${sandbox.apiKey}` },
        signal: AbortSignal.timeout(300),
      }),
    ).rejects.toThrow();
    // The fault was used up: the next request is answered.
    expect((await api(sandbox, 'GET', '/sessions/sess_x')).status).toBe(404);
  });

  it('delays the real answer for delayMs alone, and only affects matching paths', async ({
    walleotSandbox: sandbox,
  }) => {
    sandbox.fail({ delayMs: 50 });
    const { sessionId } = await create(sandbox);
    sandbox.fail({ status: 503, pathIncludes: `/sessions/${sessionId}` });
    await create(sandbox);
    expect((await api(sandbox, 'GET', `/sessions/${sessionId}`)).status).toBe(503);
  });

  it('validates control bodies', async ({ walleotSandbox: sandbox }) => {
    for (const body of [{ status: 'boom' }, { kind: 'explode' }, { count: 0 }]) {
      const res = await control(sandbox, 'fail-next', body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { type: string } }).error.type).toBe('invalid_request');
    }
    const notJson = await fetch(`${sandbox.origin}/__test/clock`, { method: 'POST', body: '{' });
    expect(notJson.status).toBe(400);
    expect((await control(sandbox, 'nothing-here', {})).status).toBe(404);
  });

  it('does not apply faults to control or checkout requests', async ({ walleotSandbox: sandbox }) => {
    const { sessionId, url } = await create(sandbox);
    sandbox.fail({ status: 500 });
    expect((await fetch(url)).status).toBe(200);
    expect((await control(sandbox, `sessions/${sessionId}/status`, { status: 'paid' })).status).toBe(200);
    expect((await api(sandbox, 'GET', `/sessions/${sessionId}`)).status).toBe(500);
  });
});

describe('request log', () => {
  it('records API requests only, with the key masked, also over GET /__test/requests', async ({
    walleotSandbox: sandbox,
  }) => {
    const { url } = await create(sandbox, { amount: 42, currency: 'usd', description: 'Logged' });
    await fetch(url);
    const res = await fetch(`${sandbox.origin}/__test/requests`);
    const { requests } = (await res.json()) as {
      requests: Array<{ method: string; path: string; body: string; headers: Record<string, string> }>;
    };
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ method: 'POST', path: '/v1/sessions' });
    expect(JSON.parse(requests[0]!.body)).toEqual({ amount: 42, currency: 'usd', description: 'Logged' });
    expect(requests[0]!.headers['authorization']).toBe(`Bearer ****${sandbox.apiKey.slice(-4)}`);
    expect(JSON.stringify(requests)).not.toContain(sandbox.apiKey);
  });
});

describe('checkout page', () => {
  it('shows brand, formatted amount, escaped description and the status', async ({
    walleotSandbox: sandbox,
  }) => {
    const { url } = await create(sandbox, {
      amount: 29,
      currency: 'usd',
      description: '<script>alert("x")</script> & more',
    });
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    expect(html).toContain('Walleot');
    expect(html).toContain('$0.29');
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; more');
    expect(html).toContain('Waiting for payment.');
    expect(html).toContain('id="pay"');
    expect(html).toContain('id="cancel"');
  });

  it('formats usdc amounts from cents', async ({ walleotSandbox: sandbox }) => {
    const { url } = await create(sandbox, { amount: 100, currency: 'usdc' });
    expect(await (await fetch(url)).text()).toContain('1.000000 USDC');
  });

  it('pays through the Pay button and redirects back to a paid page', async ({ walleotSandbox: sandbox }) => {
    const { sessionId, url } = await create(sandbox);
    const pay = await fetch(`${url}/pay`, { method: 'POST', redirect: 'manual' });
    expect(pay.status).toBe(303);
    expect(new URL(pay.headers.get('location')!, url).href).toBe(url);
    expect(await statusOf(sandbox, sessionId)).toBe('paid');
    const html = await (await fetch(url)).text();
    expect(html).toContain('Paid. You can return to your chat.');
    expect(html).not.toContain('id="pay"');
    // Cancel after pay changes nothing.
    await fetch(`${url}/cancel`, { method: 'POST', redirect: 'manual' });
    expect(await statusOf(sandbox, sessionId)).toBe('paid');
  });

  it('cancels through the Cancel button; a later Pay does nothing', async ({ walleotSandbox: sandbox }) => {
    const { sessionId, url } = await create(sandbox);
    const cancel = await fetch(`${url}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(200); // followed the 303 back to the page
    expect(await cancel.text()).toContain('Cancelled. You can return to your chat.');
    await fetch(`${url}/pay`, { method: 'POST', redirect: 'manual' });
    expect(await statusOf(sandbox, sessionId)).toBe('cancelled');
  });

  it('does not pay an expired session', async ({ walleotSandbox: sandbox }) => {
    const { sessionId, url } = await create(sandbox);
    sandbox.clock.advance(1800);
    const page = await (await fetch(url)).text();
    expect(page).toContain('expired');
    expect(page).not.toContain('id="pay"');
    await fetch(`${url}/pay`, { method: 'POST', redirect: 'manual' });
    expect(await statusOf(sandbox, sessionId)).toBe('expired');
  });

  it('answers 404 for an unknown link', async ({ walleotSandbox: sandbox }) => {
    expect((await fetch(`${sandbox.origin}/checkout/sess_nope`)).status).toBe(404);
    expect((await fetch(`${sandbox.origin}/checkout/sess_nope/pay`, { method: 'POST' })).status).toBe(404);
  });
});

describe('options', () => {
  it('uses the given key and refuses bad options', async () => {
    const custom = await startWalleotSandbox({ apiKey: 'sk_test_custom_key_1' });
    try {
      expect(custom.apiKey).toBe('sk_test_custom_key_1');
      expect(custom.baseUrl).toBe(`${custom.origin}/v1`);
      expect((await api(custom, 'POST', '/sessions', { amount: 1, currency: 'usd' })).status).toBe(200);
      expect(
        (await api(custom, 'POST', '/sessions', { amount: 1, currency: 'usd' }, 'sk_test_walleot_sandbox'))
          .status,
      ).toBe(401);
    } finally {
      await custom.close();
    }
    await expect(startWalleotSandbox({ limits: { createsPerMinute: 0 } })).rejects.toThrow(/invalid options/);
  });
});
