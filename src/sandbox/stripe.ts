import type { IncomingMessage, ServerResponse } from 'node:http';
import type Stripe from 'stripe';
import { z } from 'zod';
import {
  type Fault,
  FaultInjector,
  listen,
  RequestLog,
  readBody,
  SandboxClock,
  sandboxClockSchema,
  sendJson,
  sleep,
} from './harness.js';
import { stripeApiRoutes, unrecognizedUrl } from './stripe-api.js';
import { handleStripeControl } from './stripe-control.js';
import { canonicalParams, type FormParams, parseForm } from './stripe-form.js';
import { IdempotencyStore } from './stripe-idempotency.js';
import { stripeId } from './stripe-ids.js';
import { handleCheckoutPage } from './stripe-page.js';
import { type ApiResponse, authenticationError, faultErrorBody, stripeError } from './stripe-responses.js';
import { type AsyncOutcome, StripeSessionStore } from './stripe-state.js';
import {
  type CheckoutSessionEvent,
  SANDBOX_API_VERSION,
  StripeWebhookSender,
  type WebhookDelivery,
  type WebhookTarget,
} from './stripe-webhooks.js';
import { SandboxConfigError } from './tables.js';

export type { AsyncOutcome } from './stripe-state.js';
export { SandboxStateError } from './stripe-state.js';
export type { CheckoutSessionEvent, WebhookDelivery, WebhookTarget } from './stripe-webhooks.js';
export { signStripePayload } from './stripe-webhooks.js';

/**
 * A local stand-in for Stripe Checkout that the real `stripe`
 * SDK can be pointed at (`new Stripe(key, { ...sandbox.sdkOptions })`): Checkout Sessions with
 * Stripe's validation, lifecycle, idempotency, error shapes and signed webhooks, a hosted
 * checkout page, a controllable clock and the `/__test/*` control endpoints.
 */

export interface StripeSandboxOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** The only secret key the stand-in accepts (default `sk_test_stripe_sandbox`). */
  apiKey?: string;
  /** Default webhook signing secret (default `whsec_sandbox`). */
  webhookSecret?: string;
  /** Share a clock with other stand-ins; a fresh one by default. */
  clock?: SandboxClock;
}

/** A fault for the next API request(s); `shouldRetry` sets `Stripe-Should-Retry`. */
export interface StripeFault extends Fault {
  shouldRetry?: boolean;
}

export interface StripeSandbox {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  host: '127.0.0.1';
  port: number;
  apiKey: string;
  webhookSecret: string;
  /** Spread into the Stripe constructor: `new Stripe(apiKey, { ...sdkOptions })`. */
  sdkOptions: { host: string; port: number; protocol: 'http' };
  /** API requests only (`/v1/*`), with the Authorization header masked. */
  requests: RequestLog;
  clock: SandboxClock;
  /** The session as the API shows it now (expiry applied), or undefined. A copy. */
  getSession(id: string): Stripe.Checkout.Session | undefined;
  /** Every session, oldest first (copies). */
  listSessions(): Stripe.Checkout.Session[];
  /** Refunds made against a session's PaymentIntent. */
  getRefunds(sessionId: string): Stripe.Refund[];
  /** Card payment: complete/paid plus `checkout.session.completed`. Throws SandboxStateError unless open. */
  pay(id: string): Stripe.Checkout.Session;
  /**
   * Async payment method: complete/unpaid plus `completed`; with an outcome, also
   * `async_payment_succeeded` (paid) or `async_payment_failed`. Without one, call again later.
   */
  payAsync(id: string, outcome?: AsyncOutcome): Stripe.Checkout.Session;
  /** Expire an open session as if its `expires_at` had passed. */
  lapse(id: string): Stripe.Checkout.Session;
  /** Serve `fault` instead of the real answer for the next API request(s). */
  fail(fault: StripeFault): void;
  /** Where (and how) events are delivered; undefined stops delivery. */
  setWebhookTarget(target: WebhookTarget | undefined): void;
  /** Resolves when every queued webhook delivery has been attempted. */
  flushWebhooks(): Promise<void>;
  /** Every event raised, delivered or not. */
  webhookEvents: readonly CheckoutSessionEvent[];
  webhookDeliveries: readonly WebhookDelivery[];
  /** Forget sessions, idempotency keys, faults, requests, events and the webhook target; clock back to now. */
  reset(): void;
  close(): Promise<void>;
}

export const DEFAULT_STRIPE_SANDBOX_KEY = 'sk_test_stripe_sandbox';
export const DEFAULT_STRIPE_SANDBOX_WEBHOOK_SECRET = 'whsec_sandbox';

const optionsSchema = z.object({
  port: z.number().int().min(0).max(65_535).optional(),
  apiKey: z.string().min(1).optional(),
  webhookSecret: z.string().min(1).optional(),
  clock: sandboxClockSchema.optional(),
});

export async function startStripeSandbox(options: StripeSandboxOptions = {}): Promise<StripeSandbox> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new SandboxConfigError(`startStripeSandbox: invalid options: ${z.prettifyError(parsed.error)}`);
  }
  const apiKey = parsed.data.apiKey ?? DEFAULT_STRIPE_SANDBOX_KEY;
  const webhookSecret = parsed.data.webhookSecret ?? DEFAULT_STRIPE_SANDBOX_WEBHOOK_SECRET;
  const clock = parsed.data.clock ?? new SandboxClock();
  const faults = new FaultInjector();
  const requests = new RequestLog();
  const idempotency = new IdempotencyStore(clock);
  const webhooks = new StripeWebhookSender(clock, webhookSecret);
  // The checkout base is known once listening; no request can arrive before.
  let origin = '';
  const sessions = new StripeSessionStore(
    clock,
    () => origin,
    (type, session, cause) => webhooks.publish(type, session, cause),
  );
  const routes = stripeApiRoutes(sessions, clock);

  const handleApi = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const requestId = stripeId('req_', 14);
    const headers: Record<string, string> = {
      'request-id': requestId,
      'stripe-version': headerText(req, 'stripe-version') ?? SANDBOX_API_VERSION,
    };
    let body: string;
    try {
      body = await readBody(req);
    } catch {
      send(res, stripeError(413, { message: 'Request body too large.' }, { save: false }), headers);
      return;
    }
    requests.record(req, body);
    const path = url.pathname;
    const method = req.method ?? 'GET';

    const fault = faults.take(path);
    const faultKind = fault?.kind ?? (fault?.status !== undefined ? 'status' : undefined);
    if (fault !== undefined && faultKind !== undefined) {
      if (fault.delayMs) await sleep(fault.delayMs);
      serveFault(res, fault, faultKind, headers);
      return;
    }

    const presented = /^Bearer\s+(\S+)\s*$/i.exec(headerText(req, 'authorization') ?? '')?.[1];
    if (presented !== apiKey) {
      send(res, authenticationError(presented), headers);
      return;
    }

    const route = routes.match(method, path);
    if (route === undefined) {
      send(res, unrecognizedUrl(method, path), headers);
      return;
    }
    const contentType = headerText(req, 'content-type') ?? '';
    if (method === 'POST' && body !== '' && !contentType.startsWith('application/x-www-form-urlencoded')) {
      send(
        res,
        stripeError(
          400,
          { message: `Invalid request: unsupported Content-Type ${contentType || '(none)'}.` },
          { save: false },
        ),
        headers,
      );
      return;
    }
    // GET carries its parameters in the query (stripe-node still sends the form content type).
    const params: FormParams = parseForm(method === 'GET' ? url.search.slice(1) : body);

    const idempotencyKey = method === 'POST' ? headerText(req, 'idempotency-key') : undefined;
    let finish: ((response: ApiResponse, requestId: string) => void) | undefined;
    if (idempotencyKey !== undefined) {
      headers['idempotency-key'] = idempotencyKey;
      const gate = idempotency.begin(apiKey, idempotencyKey, `${method} ${path} ${canonicalParams(params)}`);
      if ('answer' in gate) {
        send(res, gate.answer, headers);
        return;
      }
      finish = gate.finish;
    }

    // A latency-only fault: the request is executing (its key is taken) while the answer waits.
    if (fault?.delayMs) await sleep(fault.delayMs);
    let response: ApiResponse;
    try {
      response = route(params, { requestId, idempotencyKey: idempotencyKey ?? null });
    } catch {
      response = stripeError(500, { type: 'api_error', message: 'Sandbox internal error.' }, { save: false });
    }
    finish?.(response, requestId);
    send(res, response, headers);
  };

  const serveFault = (
    res: ServerResponse,
    fault: Fault,
    kind: 'status' | 'hang' | 'malformed',
    headers: Record<string, string>,
  ): void => {
    if (kind === 'hang') return; // never answer; the client times out, close() drops the socket
    const extra = { ...headers, ...lowercaseKeys(fault.headers) };
    if (kind === 'malformed') {
      const text = '{"id": "cs_test_truncated", "object": "checkout.sess';
      res.writeHead(fault.status ?? 200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        ...extra,
      });
      res.end(text);
      return;
    }
    const status = fault.status ?? 500;
    const body = fault.body !== undefined ? fault.body : stripeError(status, faultErrorBody(status)).body;
    sendJson(res, status, body, extra);
  };

  const sandbox: StripeSandbox = {
    origin: '',
    host: '127.0.0.1',
    port: 0,
    apiKey,
    webhookSecret,
    sdkOptions: { host: '127.0.0.1', port: 0, protocol: 'http' },
    requests,
    clock,
    getSession: (id) => sessions.snapshot(id, false),
    listSessions: () => sessions.list(),
    getRefunds: (id) => [...(sessions.details(id)?.refunds ?? [])].map((r) => structuredClone(r)),
    pay: (id) => sessions.pay(id),
    payAsync: (id, outcome) => sessions.payAsync(id, outcome),
    lapse: (id) => sessions.lapse(id),
    fail: (fault) => {
      const { shouldRetry, ...rest } = fault;
      faults.add(
        shouldRetry === undefined
          ? rest
          : { ...rest, headers: { ...rest.headers, 'stripe-should-retry': String(shouldRetry) } },
      );
    },
    setWebhookTarget: (target) => webhooks.setTarget(target),
    flushWebhooks: () => webhooks.flush(),
    webhookEvents: webhooks.events,
    webhookDeliveries: webhooks.deliveries,
    reset: () => {
      sessions.clear();
      idempotency.clear();
      faults.clear();
      requests.clear();
      webhooks.clear(true);
      clock.reset();
    },
    close: async () => {
      await webhooks.abortAll();
      await server.close();
    },
  };

  const server = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const path = url.pathname;
    const handled = path.startsWith('/v1/')
      ? handleApi(req, res, url)
      : path.startsWith('/checkout/')
        ? handleCheckoutPage(req, res, path, sessions)
        : path.startsWith('/__test/')
          ? handleStripeControl(req, res, path, sandbox)
          : Promise.resolve(send(res, unrecognizedUrl(req.method ?? 'GET', path), {}));
    handled.catch(() => {
      if (!res.headersSent) {
        send(res, stripeError(500, { type: 'api_error', message: 'Sandbox internal error.' }), {});
      } else {
        res.destroy();
      }
    });
  }, parsed.data.port ?? 0);

  origin = server.origin;
  sandbox.origin = server.origin;
  sandbox.port = server.port;
  sandbox.sdkOptions = { host: '127.0.0.1', port: server.port, protocol: 'http' };
  return sandbox;
}

function send(res: ServerResponse, response: ApiResponse, headers: Record<string, string>): void {
  sendJson(res, response.status, response.body, { ...headers, ...response.headers });
}

function headerText(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function lowercaseKeys(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = v;
  return out;
}
