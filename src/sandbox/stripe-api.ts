import type { SandboxClock } from './harness.js';
import type { FormParams } from './stripe-form.js';
import { SESSION_ID_PATTERN } from './stripe-ids.js';
import { type ApiResponse, okResponse, resourceMissing, stripeError } from './stripe-responses.js';
import { type EventCause, SandboxStateError, type StripeSessionStore } from './stripe-state.js';
import { validateCreateSession, validateExpandOnly, validateRefund } from './stripe-validation.js';

/**
 * The Stripe API routes the stand-in serves: Checkout Session create, retrieve
 * and expire, and refunds by PaymentIntent. Each route turns validated parameters into an
 * ApiResponse; the HTTP layer around it does auth, faults and idempotency.
 */

export type RouteHandler = (params: FormParams, cause: EventCause) => ApiResponse;

export interface ApiRoutes {
  /** The handler for this method and path, or undefined when Stripe has no such URL. */
  match(method: string, path: string): RouteHandler | undefined;
}

export function stripeApiRoutes(sessions: StripeSessionStore, clock: SandboxClock): ApiRoutes {
  const create: RouteHandler = (params) => {
    const input = validateCreateSession(params, clock.nowSeconds());
    if (!input.ok) return input.response;
    const session = sessions.create(input.value);
    return okResponse(input.value.expandPaymentIntent ? sessions.snapshot(session.id, true) : session);
  };

  const retrieve =
    (id: string): RouteHandler =>
    (params) => {
      const expand = validateExpandOnly(params);
      if (!expand.ok) return expand.response;
      const session = SESSION_ID_PATTERN.test(id) ? sessions.snapshot(id, expand.value) : undefined;
      return session === undefined ? missingSession(id) : okResponse(session);
    };

  const expire =
    (id: string): RouteHandler =>
    (params, cause) => {
      const expand = validateExpandOnly(params, true);
      if (!expand.ok) return expand.response;
      if (!SESSION_ID_PATTERN.test(id)) return missingSession(id);
      return runTransition(() => {
        sessions.expire(id, cause);
        return sessions.snapshot(id, expand.value);
      });
    };

  const refund: RouteHandler = (params) => {
    const input = validateRefund(params);
    if (!input.ok) return input.response;
    return runTransition(() => sessions.refund(input.value));
  };

  return {
    match(method, path) {
      if (path === '/v1/checkout/sessions') return method === 'POST' ? create : undefined;
      if (path === '/v1/refunds') return method === 'POST' ? refund : undefined;
      const session = /^\/v1\/checkout\/sessions\/([^/]+)(\/expire)?$/.exec(path);
      if (session === null) return undefined;
      const id = session[1] as string;
      if (session[2] === undefined) return method === 'GET' ? retrieve(id) : undefined;
      return method === 'POST' ? expire(id) : undefined;
    },
  };
}

export function unrecognizedUrl(method: string, path: string): ApiResponse {
  return stripeError(
    404,
    {
      message: `Unrecognized request URL (${method}: ${path.slice(0, 200)}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
    },
    { save: false },
  );
}

function missingSession(id: string): ApiResponse {
  return resourceMissing('checkout.session', id.slice(0, 200), 'session');
}

/** A state transition's result, or Stripe's answer for the transition it refused. */
function runTransition(action: () => unknown): ApiResponse {
  try {
    return okResponse(action());
  } catch (error) {
    if (!(error instanceof SandboxStateError)) throw error;
    return stripeError(error.status, {
      message: error.message,
      ...(error.stripeCode === undefined ? {} : { code: error.stripeCode }),
      ...(error.param === undefined ? {} : { param: error.param }),
    });
  }
}
