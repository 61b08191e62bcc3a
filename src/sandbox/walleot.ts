import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import {
  clockControlSchema,
  type Fault,
  FaultInjector,
  faultControlSchema,
  listen,
  RequestLog,
  readBody,
  readControlJson,
  redirect,
  renderCheckoutPage,
  SandboxClock,
  sandboxClockSchema,
  sendHtml,
  sendJson,
  sleep,
} from './harness.js';
import { formatAmount, isoExponent, SandboxConfigError, WALLEOT_WIRE_EXPONENT } from './tables.js';
import { rateLimitHeaders, type WalleotRateBucket, WalleotRateLimiter } from './walleot-rate-limit.js';
import {
  WALLEOT_SESSION_STATUSES,
  type WalleotAutoPay,
  type WalleotSession,
  WalleotSessionBook,
  type WalleotSessionStatus,
} from './walleot-sessions.js';

export type { WalleotAutoPay, WalleotSession, WalleotSessionStatus } from './walleot-sessions.js';

/**
 * A local stand-in for the Walleot API: `POST /v1/sessions`,
 * `GET /v1/sessions/{id}`, bearer auth, per-key rate limits with `X-RateLimit-*` headers, session
 * expiry on a controllable clock, a checkout page with Pay/Cancel, and the `/__test/*` controls.
 */

export interface WalleotSandboxOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** The only key the stand-in accepts (default `sk_test_walleot_sandbox`). */
  apiKey?: string;
  /** Share a clock with other stand-ins; a fresh one by default. */
  clock?: SandboxClock;
  /** Per key, per minute. Defaults are Walleot's: 100 creates, 1000 status reads. */
  limits?: { createsPerMinute?: number; statusReadsPerMinute?: number };
  /** Pending sessions turn `expired` this long after creation (sandbox clock). Default 1800. */
  sessionTtlSeconds?: number;
}

export interface WalleotSandbox {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** `origin + '/v1'`: hand this to `WalleotProvider({ baseUrl })`. */
  baseUrl: string;
  apiKey: string;
  /** API requests only (`/v1/*`), with the Authorization header masked. */
  requests: RequestLog;
  clock: SandboxClock;
  /** The session as it stands now (expiry applied), or undefined. A copy. */
  getSession(id: string): WalleotSession | undefined;
  setStatus(id: string, status: WalleotSessionStatus): void;
  setAutoPay(mode: WalleotAutoPay): void;
  /** Serve `fault` instead of the real answer for the next API request(s). */
  fail(fault: Fault): void;
  /** Forget sessions, faults, recorded requests, rate-limit counters; auto-pay off; clock back to now. */
  reset(): void;
  close(): Promise<void>;
}

export const DEFAULT_WALLEOT_SANDBOX_KEY = 'sk_test_walleot_sandbox';

const optionsSchema = z.object({
  port: z.number().int().min(0).max(65_535).optional(),
  apiKey: z.string().min(1).optional(),
  clock: sandboxClockSchema.optional(),
  limits: z
    .object({
      createsPerMinute: z.number().int().positive().optional(),
      statusReadsPerMinute: z.number().int().positive().optional(),
    })
    .optional(),
  sessionTtlSeconds: z.number().positive().optional(),
});

const createSessionSchema = z.object(
  {
    amount: z
      .number({ error: 'amount is required and must be a positive integer number of cents' })
      .int({ error: 'amount must be a positive integer (cents, no decimals)' })
      .positive({ error: 'amount must be a positive integer' }),
    currency: z
      .string({ error: 'currency is required: a lowercase ISO 4217 code such as "usd"' })
      .refine((c) => c === c.toLowerCase(), { error: 'currency must be lowercase, such as "usd"' })
      .refine((c) => isoExponent(c) !== undefined, {
        error: 'currency must be a lowercase ISO 4217 code such as "usd"',
      }),
    description: z.string({ error: 'description must be a string' }).max(1000).optional(),
  },
  { error: 'Request body must be a JSON object' },
);

const sessionStatusSchema = z.enum(WALLEOT_SESSION_STATUSES);

const faultSchema = faultControlSchema;
const clockSchema = clockControlSchema;
const statusBodySchema = z.object({ status: sessionStatusSchema });
const configSchema = z.object({ autoPay: z.enum(['off', 'first_poll']) });

const STATUS_TEXT: Record<WalleotSessionStatus, string> = {
  pending: 'Waiting for payment.',
  paid: 'Paid. You can return to your chat.',
  failed: 'Payment failed. You can return to your chat and try again.',
  expired: 'This payment link has expired. You can return to your chat and ask for a new one.',
  cancelled: 'Cancelled. You can return to your chat.',
};

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  402: 'payment_required',
  404: 'not_found',
  405: 'invalid_request',
  413: 'invalid_request',
  429: 'rate_limited',
};

function walleotError(status: number, message: string): { error: { type: string; message: string } } {
  return {
    error: { type: ERROR_TYPES[status] ?? (status >= 500 ? 'server_error' : 'invalid_request'), message },
  };
}

export async function startWalleotSandbox(options: WalleotSandboxOptions = {}): Promise<WalleotSandbox> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new SandboxConfigError(`startWalleotSandbox: invalid options: ${z.prettifyError(parsed.error)}`);
  }
  const apiKey = parsed.data.apiKey ?? DEFAULT_WALLEOT_SANDBOX_KEY;
  const clock = parsed.data.clock ?? new SandboxClock();
  const sessions = new WalleotSessionBook(clock, parsed.data.sessionTtlSeconds ?? 1800);
  const limiter = new WalleotRateLimiter(clock, {
    create: parsed.data.limits?.createsPerMinute ?? 100,
    status: parsed.data.limits?.statusReadsPerMinute ?? 1000,
  });
  const faults = new FaultInjector();
  const requests = new RequestLog();
  // Set once listening; no request can arrive before.
  let origin = '';

  const reset = (): void => {
    sessions.clear();
    faults.clear();
    requests.clear();
    limiter.clear();
    clock.reset();
  };

  /** The bearer token if it is the accepted key, else undefined. */
  const authorizedKey = (req: IncomingMessage): string | undefined => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    return match?.[1] === apiKey ? match[1] : undefined;
  };

  const sendFault = async (
    res: ServerResponse,
    fault: Fault,
    limitHeaders: Record<string, string>,
  ): Promise<boolean> => {
    if (fault.delayMs !== undefined && fault.delayMs > 0) await sleep(fault.delayMs);
    const kind = fault.kind ?? (fault.status !== undefined ? 'status' : undefined);
    if (kind === undefined) return false; // latency only: go on with the real answer
    if (kind === 'hang') return true; // never answer; the socket is closed by the client or close()
    if (kind === 'malformed') {
      const text = '{"sessionId": "sess_trunc';
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        ...limitHeaders,
        ...lowercaseKeys(fault.headers),
      });
      res.end(text);
      return true;
    }
    const status = fault.status ?? 500;
    const headers: Record<string, string> = { ...limitHeaders };
    if (status === 429) {
      headers['x-ratelimit-remaining'] = '0';
      headers['retry-after'] = String(
        Math.max(1, Number(limitHeaders['x-ratelimit-reset']) - clock.nowSeconds()),
      );
    }
    const body =
      fault.body !== undefined ? fault.body : walleotError(status, `Injected sandbox fault (${status})`);
    sendJson(res, status, body, { ...headers, ...lowercaseKeys(fault.headers) });
    return true;
  };

  const handleApi = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    let body: string;
    const bucket: WalleotRateBucket = req.method === 'POST' ? 'create' : 'status';
    const key = authorizedKey(req);
    try {
      body = await readBody(req);
    } catch {
      sendJson(
        res,
        413,
        walleotError(413, 'Request body too large'),
        rateLimitHeaders(limiter.peek(key ?? '', bucket)),
      );
      return;
    }
    requests.record(req, body);

    const fault = faults.take(path);
    if (fault !== undefined) {
      const limitHeaders = rateLimitHeaders(limiter.peek(key ?? '', bucket));
      if (await sendFault(res, fault, limitHeaders)) return;
    }

    if (key === undefined) {
      const message = req.headers.authorization
        ? 'Invalid API key provided'
        : 'Missing API key: send Authorization: Bearer <secret key>';
      sendJson(res, 401, walleotError(401, message), rateLimitHeaders(limiter.peek('', bucket)));
      return;
    }
    const decision = limiter.consume(key, bucket);
    const headers = rateLimitHeaders(decision);
    if (!decision.allowed) {
      const what = bucket === 'create' ? 'session creations' : 'status checks';
      sendJson(res, 429, walleotError(429, `Rate limit exceeded: ${decision.limit} ${what} per minute`), {
        ...headers,
        'retry-after': String(decision.retryAfterSeconds),
      });
      return;
    }

    if (path === '/v1/sessions') {
      if (req.method !== 'POST') {
        sendJson(res, 405, walleotError(405, `${req.method} is not allowed on /v1/sessions`), {
          ...headers,
          allow: 'POST',
        });
        return;
      }
      createSession(res, body, headers);
      return;
    }
    const match = /^\/v1\/sessions\/([^/]+)$/.exec(path);
    if (match) {
      if (req.method !== 'GET') {
        sendJson(res, 405, walleotError(405, `${req.method} is not allowed on ${path}`), {
          ...headers,
          allow: 'GET',
        });
        return;
      }
      const id = safeDecode(match[1]!);
      const status = id === undefined ? undefined : sessions.readStatus(id);
      if (status === undefined) {
        sendJson(res, 404, walleotError(404, `No such session: ${(id ?? match[1]!).slice(0, 100)}`), headers);
        return;
      }
      sendJson(res, 200, { status }, headers);
      return;
    }
    sendJson(res, 404, walleotError(404, `Unknown endpoint ${req.method} ${path}`), headers);
  };

  const createSession = (res: ServerResponse, body: string, headers: Record<string, string>): void => {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      sendJson(res, 400, walleotError(400, 'Request body must be valid JSON'), headers);
      return;
    }
    const input = createSessionSchema.safeParse(json);
    if (!input.success) {
      sendJson(res, 400, walleotError(400, input.error.issues[0]?.message ?? 'Invalid request'), headers);
      return;
    }
    const { amount, currency, description } = input.data;
    // Cents of a currency with fewer than two decimals must be whole minor units (150 jpy cents is not).
    const exponent = isoExponent(currency)!;
    if (exponent < WALLEOT_WIRE_EXPONENT && amount % 10 ** (WALLEOT_WIRE_EXPONENT - exponent) !== 0) {
      const message = `amount ${amount} (cents) is not a whole number of ${currency} minor units`;
      sendJson(res, 400, walleotError(400, message), headers);
      return;
    }
    const session = sessions.create({ amount, currency, description: description ?? '' });
    sendJson(res, 200, { sessionId: session.id, url: `${origin}/checkout/${session.id}` }, headers);
  };

  const handleCheckout = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const match = /^\/checkout\/([^/]+)(?:\/(pay|cancel))?$/.exec(path);
    const id = match ? safeDecode(match[1]!) : undefined;
    const session = id === undefined ? undefined : sessions.get(id);
    if (match === null || id === undefined || session === undefined) {
      sendHtml(res, 404, '<!doctype html><title>Not found</title><p>This payment link does not exist.</p>');
      return;
    }
    const pagePath = `/checkout/${encodeURIComponent(id)}`;
    const action = match[2];
    if (action !== undefined) {
      if (req.method !== 'POST') {
        redirect(res, pagePath);
        return;
      }
      await readBody(req, 16 * 1024).catch(() => '');
      sessions.settle(id, action === 'pay' ? 'paid' : 'cancelled');
      redirect(res, pagePath);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendHtml(res, 405, '<!doctype html><title>Method not allowed</title><p>Method not allowed.</p>', {
        allow: 'GET',
      });
      return;
    }
    const html = renderCheckoutPage({
      brand: 'Walleot',
      amountText: formatCents(session.amount, session.currency),
      description: session.description || 'Payment',
      statusText: STATUS_TEXT[session.status],
      actionBase: pagePath,
      open: session.status === 'pending',
    });
    sendHtml(res, 200, html);
  };

  const handleControl = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    if (req.method === 'GET' && path === '/__test/requests') {
      sendJson(res, 200, { requests: requests.entries });
      return;
    }
    if (req.method !== 'POST') {
      sendJson(res, 405, walleotError(405, 'Control endpoints take POST (except GET /__test/requests)'));
      return;
    }
    const body = await readControlJson(req);
    if (body === undefined) {
      sendJson(res, 400, walleotError(400, 'Control body must be valid JSON'));
      return;
    }
    const json = body.json;
    const invalid = (error: z.ZodError): void =>
      sendJson(res, 400, walleotError(400, `Invalid control body: ${z.prettifyError(error)}`));

    if (path === '/__test/reset') {
      reset();
      sendJson(res, 200, { ok: true });
      return;
    }
    if (path === '/__test/clock') {
      const input = clockSchema.safeParse(json);
      if (!input.success) return invalid(input.error);
      clock.advance(input.data.advanceSeconds);
      sendJson(res, 200, { now: clock.now() });
      return;
    }
    if (path === '/__test/fail-next') {
      const input = faultSchema.safeParse(json);
      if (!input.success) return invalid(input.error);
      faults.add(input.data);
      sendJson(res, 200, { ok: true });
      return;
    }
    if (path === '/__test/config') {
      const input = configSchema.safeParse(json);
      if (!input.success) return invalid(input.error);
      sessions.autoPay = input.data.autoPay;
      sendJson(res, 200, { autoPay: sessions.autoPay });
      return;
    }
    const match = /^\/__test\/sessions\/([^/]+)\/status$/.exec(path);
    if (match) {
      const input = statusBodySchema.safeParse(json);
      if (!input.success) return invalid(input.error);
      const id = safeDecode(match[1]!);
      if (id === undefined || !sessions.setStatus(id, input.data.status)) {
        sendJson(res, 404, walleotError(404, 'No such session'));
        return;
      }
      sendJson(res, 200, { id, status: input.data.status });
      return;
    }
    sendJson(res, 404, walleotError(404, `Unknown control endpoint ${path}`));
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
    if (path === '/v1' || path.startsWith('/v1/')) return handleApi(req, res, path);
    if (path.startsWith('/__test/')) return handleControl(req, res, path);
    if (path.startsWith('/checkout/')) return handleCheckout(req, res, path);
    sendJson(res, 404, walleotError(404, `Not found: ${path}`));
  };

  const running = await listen((req, res) => {
    route(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, walleotError(500, 'Sandbox internal error'));
      else res.destroy();
    });
  }, parsed.data.port ?? 0);
  origin = running.origin;

  return {
    origin,
    baseUrl: `${origin}/v1`,
    apiKey,
    requests,
    clock,
    getSession: (id) => {
      const session = sessions.get(id);
      return session === undefined ? undefined : { ...session };
    },
    setStatus: (id, status) => {
      if (!sessions.setStatus(id, sessionStatusSchema.parse(status))) {
        throw new Error(`Walleot sandbox: no session ${id}`);
      }
    },
    setAutoPay: (mode) => {
      sessions.autoPay = mode;
    },
    fail: (fault) => faults.add(fault),
    reset,
    close: () => running.close(),
  };
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function lowercaseKeys(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) out[name.toLowerCase()] = value;
  return out;
}

/** Cents shown in the currency's own minor units: 100 usdc cents is `1.000000 USDC`. */
function formatCents(cents: number, currency: string): string {
  const exponent = isoExponent(currency) ?? WALLEOT_WIRE_EXPONENT;
  const minor =
    exponent >= WALLEOT_WIRE_EXPONENT
      ? cents * 10 ** (exponent - WALLEOT_WIRE_EXPONENT)
      : cents / 10 ** (WALLEOT_WIRE_EXPONENT - exponent); // exact: creation checked divisibility
  return formatAmount(minor, exponent, currency);
}
