/**
 * Marks payrouter's errors. `Symbol.for` is one symbol per process, so the ESM and the CommonJS
 * builds (two copies of every class, where `instanceof` tells them apart) mark them alike.
 */
const PAYROUTER_ERROR = Symbol.for('payrouter.error');

/**
 * Every error payrouter throws is a PayRouterError with a stable `code`. Messages are safe to show:
 * they never carry API keys, webhook secrets or raw provider bodies.
 */
export class PayRouterError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PayRouterError';
    this.code = code;
    Object.defineProperty(this, PAYROUTER_ERROR, { value: true });
  }
}

/**
 * True for an error payrouter threw, whichever copy of the package threw it: unlike `instanceof
 * PayRouterError`, this holds across the ESM and CommonJS builds (and duplicated installs).
 * Read `error.code` (and `error.name`: `ConfigError`, `MoneyError`, `ProviderError`,
 * `WebhookError`) to tell them apart.
 */
export function isPayRouterError(error: unknown): error is PayRouterError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { [PAYROUTER_ERROR]?: unknown })[PAYROUTER_ERROR] === true &&
    typeof (error as { code?: unknown }).code === 'string'
  );
}

/** Misconfiguration found at construction or tool registration. */
export class ConfigError extends PayRouterError {
  constructor(message: string) {
    super('config_error', message);
    this.name = 'ConfigError';
  }
}

/** An amount or currency that cannot be represented exactly. */
export class MoneyError extends PayRouterError {
  constructor(message: string) {
    super('invalid_amount', message);
    this.name = 'MoneyError';
  }
}

export type ProviderErrorCode =
  | 'auth_failed'
  | 'invalid_request'
  | 'not_found'
  | 'rate_limited'
  | 'provider_unavailable'
  | 'timeout'
  | 'malformed_response'
  | 'idempotency_conflict'
  | 'not_supported';

const USER_MESSAGES: Record<ProviderErrorCode, string> = {
  auth_failed:
    'The payment provider rejected our credentials. The server operator has to fix its configuration.',
  invalid_request: 'The payment provider refused this payment request.',
  not_found: 'The payment provider does not know this payment.',
  rate_limited: 'The payment provider is busy right now. Please try again in a moment.',
  provider_unavailable: 'The payment provider is not reachable right now. Please try again shortly.',
  timeout: 'The payment provider did not answer in time. Please try again shortly.',
  malformed_response: 'The payment provider sent an answer we could not read. Please try again shortly.',
  idempotency_conflict: 'This payment was already started with different details.',
  not_supported: 'This payment provider does not support that operation.',
};

const RETRYABLE: ReadonlySet<ProviderErrorCode> = new Set([
  'rate_limited',
  'provider_unavailable',
  'timeout',
  'malformed_response',
]);

/** A failed provider interaction, classified. `message` is for operators, `userMessage` for end users. */
export class ProviderError extends PayRouterError {
  override readonly code: ProviderErrorCode;
  readonly providerId: string;
  readonly retryable: boolean;
  readonly userMessage: string;
  /** HTTP status the provider answered with, when there was an answer. */
  readonly status?: number;
  /** How long the provider asked us to wait before the next request, when it said. */
  readonly retryAfterMs?: number;

  constructor(
    providerId: string,
    code: ProviderErrorCode,
    message: string,
    extra: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(code, `${providerId}: ${message}`, { cause: extra.cause });
    this.name = 'ProviderError';
    this.code = code;
    this.providerId = providerId;
    this.retryable = RETRYABLE.has(code);
    this.userMessage = USER_MESSAGES[code];
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.retryAfterMs !== undefined) this.retryAfterMs = extra.retryAfterMs;
  }
}

/** A webhook that failed verification or parsing; the HTTP layer answers 400 and changes nothing. */
export class WebhookError extends PayRouterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_webhook', message, options);
    this.name = 'WebhookError';
  }
}
