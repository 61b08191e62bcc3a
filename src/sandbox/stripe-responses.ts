/**
 * Answers of the Stripe stand-in, built before they are written so idempotency can save and
 * replay them and fault injection can delay them. Error bodies use Stripe's shape
 * `{ error: { type, code?, message, param?, doc_url? } }`.
 */

export interface ApiResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /**
   * Whether an idempotency key may keep this answer. Stripe saves every result of an endpoint
   * that started executing (errors included) but nothing for requests that failed validation.
   */
  save: boolean;
}

export type StripeErrorType = 'invalid_request_error' | 'api_error' | 'card_error' | 'idempotency_error';

export interface StripeErrorFields {
  type?: StripeErrorType;
  code?: string;
  message: string;
  param?: string;
}

export function stripeError(
  status: number,
  fields: StripeErrorFields,
  options: { save?: boolean; headers?: Record<string, string> } = {},
): ApiResponse {
  const { type = 'invalid_request_error', code, message, param } = fields;
  const error: Record<string, string> = { type, message };
  if (code !== undefined) {
    error['code'] = code;
    error['doc_url'] = `https://docs.stripe.com/error-codes/${code.replace(/_/g, '-')}`;
  }
  if (param !== undefined) error['param'] = param;
  return {
    status,
    body: { error },
    save: options.save ?? true,
    ...(options.headers ? { headers: options.headers } : {}),
  };
}

/** A request refused by parameter validation: 400, never saved under an idempotency key. */
export function invalidParams(message: string, fields: { code?: string; param?: string } = {}): ApiResponse {
  return stripeError(400, { message, ...fields }, { save: false });
}

export function resourceMissing(objectName: string, id: string, param?: string): ApiResponse {
  return stripeError(404, {
    code: 'resource_missing',
    message: `No such ${objectName}: '${id}'`,
    ...(param === undefined ? {} : { param }),
  });
}

export function okResponse(body: unknown): ApiResponse {
  return { status: 200, body, save: true };
}

/** Stripe's answer to a bad or missing key; the key is masked as Stripe does. */
export function authenticationError(presentedKey: string | undefined): ApiResponse {
  const message =
    presentedKey === undefined || presentedKey === ''
      ? "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
      : `Invalid API Key provided: ${maskKey(presentedKey)}`;
  return stripeError(401, { message }, { save: false });
}

function maskKey(key: string): string {
  const prefix = /^(sk|rk|pk)_(test|live)_/.exec(key)?.[0] ?? '';
  return `${prefix}${'*'.repeat(Math.max(4, Math.min(24, key.length - prefix.length - 4)))}${key.slice(-4)}`;
}

/** Default error bodies for injected status faults, as Stripe words them. */
export function faultErrorBody(status: number): StripeErrorFields {
  switch (status) {
    case 400:
      return { message: 'Injected invalid request (sandbox fault).' };
    case 401:
      return { message: 'Invalid API Key provided: sk_test_****' };
    case 402:
      return { type: 'card_error', code: 'card_declined', message: 'Your card was declined.' };
    case 404:
      return { code: 'resource_missing', message: 'Injected not-found (sandbox fault).' };
    case 409:
      return {
        code: 'lock_timeout',
        message:
          'This object cannot be accessed right now because another API request or Stripe process is currently accessing it.',
      };
    case 429:
      return {
        code: 'rate_limit',
        message:
          'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.',
      };
    default:
      return {
        type: 'api_error',
        message: 'An unknown error occurred. Please try again later (sandbox fault).',
      };
  }
}
