import { ProviderError, type ProviderErrorCode } from '../../core/errors.js';
import { redactText } from '../../core/logger.js';
import type { StripeModule } from './sdk.js';

/**
 * stripe-node error classes mapped to payrouter's ProviderError codes. Messages
 * carry Stripe's code, param and request id for operators, never the API key: authentication
 * messages are our own (Stripe's echoes part of the key), the rest go through redaction.
 */
export function stripeProviderError(
  providerId: string,
  error: unknown,
  action: string,
  /** The loaded SDK; undefined when loading it failed (then nothing is a Stripe error). */
  Stripe: StripeModule | undefined,
): ProviderError {
  if (error instanceof ProviderError) return error;
  if (Stripe === undefined || !(error instanceof Stripe.errors.StripeError)) {
    const text = error instanceof Error ? error.message : String(error);
    return new ProviderError(providerId, 'provider_unavailable', `${action} failed: ${redactText(text)}`);
  }
  const status = typeof error.statusCode === 'number' ? error.statusCode : undefined;
  const where = error.requestId ? ` (request ${error.requestId})` : '';
  const make = (code: ProviderErrorCode, message: string, retryAfterMs?: number): ProviderError =>
    new ProviderError(providerId, code, `${action} failed: ${redactText(message)}${where}`, {
      ...(status === undefined ? {} : { status }),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  const detail = [error.code, error.param ? `param ${error.param}` : undefined, error.message]
    .filter((part) => part !== undefined && part !== '')
    .join(': ');

  if (error instanceof Stripe.errors.StripeAuthenticationError) {
    return make(
      'auth_failed',
      'Stripe rejected the API key (check the secret key configured for StripeProvider)',
    );
  }
  if (error instanceof Stripe.errors.StripePermissionError) {
    return make('auth_failed', 'the API key lacks permission for this request (a restricted key?)');
  }
  if (error instanceof Stripe.errors.StripeIdempotencyError) {
    return make('idempotency_conflict', detail);
  }
  if (error instanceof Stripe.errors.StripeRateLimitError) {
    return make('rate_limited', detail, retryAfterMs(error.headers));
  }
  if (error instanceof Stripe.errors.StripeInvalidRequestError) {
    const notFound = status === 404 || error.code === 'resource_missing';
    return make(notFound ? 'not_found' : 'invalid_request', detail);
  }
  if (error instanceof Stripe.errors.StripeCardError) {
    return make('invalid_request', detail);
  }
  if (error instanceof Stripe.errors.StripeConnectionError) {
    const code = (error.detail as { code?: unknown } | undefined)?.code;
    const timedOut = code === 'ETIMEDOUT' || /timeout/i.test(error.message);
    return make(timedOut ? 'timeout' : 'provider_unavailable', error.message);
  }
  if (
    error instanceof Stripe.errors.StripeAPIError &&
    status === undefined &&
    /invalid json/i.test(error.message)
  ) {
    return make('malformed_response', 'Stripe answered with a body that is not JSON');
  }
  return make('provider_unavailable', detail || 'Stripe API error');
}

function retryAfterMs(headers: unknown): number | undefined {
  if (headers === null || typeof headers !== 'object') return undefined;
  const raw = (headers as Record<string, unknown>)['retry-after'];
  const text = Array.isArray(raw) ? raw[0] : raw;
  if (typeof text !== 'string' || !/^\d+(\.\d+)?$/.test(text.trim())) return undefined;
  return Math.round(Number(text) * 1000);
}
