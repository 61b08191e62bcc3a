import { z } from 'zod';
import { ConfigError, ProviderError } from '../../core/errors.js';
import {
  consoleLogger,
  type Logger,
  namespaced,
  redactingLogger,
  registerSecret,
} from '../../core/logger.js';
import { currencyExponent, normalizeCurrency } from '../../core/money/currencies.js';
import { type Money, rescaleExact, toDecimalString } from '../../core/money/money.js';
import type {
  Charge,
  ChargeRefusal,
  CreatedPayment,
  CreatePaymentOptions,
  PaymentProvider,
  ProviderCapabilities,
  ProviderPaymentState,
} from '../../core/provider.js';
import { WalleotHttpClient } from './http.js';
import { mapWalleotStatus } from './statuses.js';
import {
  WALLEOT_DEFAULT_BASE_URL,
  WALLEOT_DEFAULT_CURRENCIES,
  WALLEOT_MAX_CENTS,
  WALLEOT_STATUS_READS_PER_MINUTE,
  WALLEOT_WIRE_EXPONENT,
  walleotLimitsFor,
} from './tables.js';

/**
 * Walleot credits: `POST /sessions` with an amount in cents and a
 * lowercase currency, `GET /sessions/{id}` for the status. No webhooks, redirects, refunds or
 * idempotency; pre-approved credits can pay instantly, so the router polls.
 */

/** `Id`: the `id` option's type, so a literal id types the routers built with this provider. */
export interface WalleotProviderOptions<Id extends string = string> {
  /** Walleot secret key (`sk_test_…` / `sk_live_…`). Typed to accept `process.env.WALLEOT_API_KEY` directly. */
  apiKey: string | undefined;
  /** Default `https://api.walleot.com/v1`; point it at the sandbox stand-in for tests. */
  baseUrl?: string;
  /** Default `['USD', 'USDC']`. Walleot amounts are whole cents, so each needs a cent. */
  currencies?: string[];
  /** Deadline per HTTP attempt. Default 10000. */
  timeoutMs?: number;
  /** Retries after the first attempt, where a retry is safe. Default 2. */
  maxRetries?: number;
  /** Provider id used in routing, tool overrides and results. Default `walleot`. */
  id?: Id;
  /**
   * Whether payments are test payments (hosted pages show a test-mode banner). Default: true for a
   * `sk_test_` key or any `baseUrl` other than Walleot's production API.
   */
  testMode?: boolean;
  logger?: Logger;
}

const MAX_CENTS = WALLEOT_MAX_CENTS;
const WIRE_EXPONENT = WALLEOT_WIRE_EXPONENT;

const isLogger = (value: unknown): value is Logger =>
  typeof value === 'object' &&
  value !== null &&
  ['debug', 'info', 'warn', 'error'].every(
    (level) => typeof (value as Record<string, unknown>)[level] === 'function',
  );

const optionsSchema = z.object({
  baseUrl: z.string().min(1).optional(),
  currencies: z.array(z.string()).min(1, { error: 'currencies must list at least one currency' }).optional(),
  timeoutMs: z.number().int().positive().max(300_000).optional(),
  testMode: z.boolean().optional(),
  maxRetries: z.number().int().min(0).max(5).optional(),
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,39}$/i, { error: 'id must be 1-40 letters, digits, "_" or "-"' })
    .optional(),
  logger: z
    .custom<Logger>(isLogger, { error: 'logger must have debug, info, warn and error methods' })
    .optional(),
});

const createdSchema = z.object({
  sessionId: z.string().min(1),
  url: z
    .string()
    .min(1)
    .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), {
      error: 'url must be http(s)',
    }),
});

const statusSchema = z.object({ status: z.string().optional() });

// Header-safe (visible ASCII) and bounded, so it cannot break the request.
const idempotencyKeySchema = z.string().regex(/^[\x21-\x7e]{1,255}$/);
const paymentIdSchema = z.string().min(1).max(255);

export class WalleotProvider<Id extends string = 'walleot'> implements PaymentProvider<Id> {
  readonly id: Id;
  readonly capabilities: ProviderCapabilities;
  // Private fields: printing or serialising the provider cannot reach the key held by the client.
  readonly #http: WalleotHttpClient;
  readonly #logger: Logger;

  constructor(options: WalleotProviderOptions<Id>) {
    if (typeof options !== 'object' || options === null) {
      throw new ConfigError('WalleotProvider needs an options object with apiKey');
    }
    const apiKey = typeof options.apiKey === 'string' ? options.apiKey.trim() : '';
    if (apiKey === '') throw new ConfigError('WalleotProvider needs apiKey (set WALLEOT_API_KEY)');
    registerSecret(apiKey);
    if (/[^\x21-\x7e]/.test(apiKey)) {
      throw new ConfigError(
        'WalleotProvider apiKey contains spaces or control characters; check WALLEOT_API_KEY',
      );
    }
    const parsed = optionsSchema.safeParse(options);
    if (!parsed.success) {
      throw new ConfigError(`WalleotProvider: invalid options: ${z.prettifyError(parsed.error)}`);
    }
    const settings = parsed.data;
    // Without an `id` option `Id` is its default, 'walleot'.
    this.id = (settings.id ?? 'walleot') as Id;
    this.#logger = namespaced(
      settings.logger === undefined ? consoleLogger() : redactingLogger(settings.logger),
      'walleot',
    );
    const baseUrl = parseBaseUrl(settings.baseUrl ?? WALLEOT_DEFAULT_BASE_URL);
    if (baseUrl.protocol === 'http:' && !isLoopback(baseUrl.hostname)) {
      this.#logger.warn(
        'WalleotProvider baseUrl uses plain http to a non-local host; the API key travels unencrypted',
        {
          provider: this.id,
          host: baseUrl.host,
        },
      );
    }
    const currencies = parseCurrencies(settings.currencies ?? [...WALLEOT_DEFAULT_CURRENCIES]);
    this.capabilities = Object.freeze({
      label: 'Walleot balance',
      currencies: Object.freeze(currencies),
      limits: Object.freeze(Object.fromEntries(currencies.map((c) => [c, walleotLimitsFor(c)]))),
      fee: Object.freeze({ percentBps: 0, fixedMinor: 0, label: 'no fee' }),
      instant: true,
      webhooks: false,
      returnRedirect: false,
      refunds: false,
      cancel: false,
      statusReadsPerMinute: WALLEOT_STATUS_READS_PER_MINUTE,
      testMode:
        settings.testMode ??
        (apiKey.startsWith('sk_test_') || baseUrl.href.replace(/\/+$/, '') !== WALLEOT_DEFAULT_BASE_URL),
    });
    this.#http = new WalleotHttpClient({
      providerId: this.id,
      baseUrl,
      apiKey,
      timeoutMs: settings.timeoutMs ?? 10_000,
      maxRetries: settings.maxRetries ?? 2,
      logger: this.#logger,
    });
  }

  /** A safe one-line summary: no key. */
  toString(): string {
    return `WalleotProvider { id: '${this.id}', mode: '${this.capabilities.testMode ? 'test' : 'live'}' }`;
  }

  toJSON(): { provider: 'WalleotProvider'; id: string; mode: 'test' | 'live' } {
    return { provider: 'WalleotProvider', id: this.id, mode: this.capabilities.testMode ? 'test' : 'live' };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  refuseCharge(money: Money): ChargeRefusal {
    const code = normalizeCurrency(money.currency);
    if (code === undefined || !this.capabilities.currencies.includes(code)) {
      return `Walleot is configured for ${this.capabilities.currencies.join(', ')} only, not ${String(money.currency)}`;
    }
    if (!Number.isSafeInteger(money.minor) || money.minor <= 0) {
      return `amount must be a positive whole number of ${code} minor units`;
    }
    const cents = rescaleExact(money.minor, currencyExponent(code), WIRE_EXPONENT);
    if (cents === undefined) {
      return `Walleot charges whole cents; ${toDecimalString(money)} ${code} is not a whole number of cents`;
    }
    if (cents > MAX_CENTS) return `${toDecimalString(money)} ${code} is above the Walleot maximum per charge`;
    return undefined;
  }

  async createPayment(charge: Charge, options: CreatePaymentOptions): Promise<CreatedPayment> {
    const refusal = this.refuseCharge(charge.money);
    if (refusal !== undefined) throw new ProviderError(this.id, 'invalid_request', refusal);
    const idempotencyKey = idempotencyKeySchema.safeParse(options.idempotencyKey);
    if (!idempotencyKey.success) {
      throw new ProviderError(
        this.id,
        'invalid_request',
        'idempotency key must be 1-255 visible ASCII characters',
      );
    }
    const code = normalizeCurrency(charge.money.currency)!;
    const cents = rescaleExact(charge.money.minor, currencyExponent(code), WIRE_EXPONENT)!;
    // Walleot ignores Idempotency-Key (none documented); it costs nothing and helps if that changes.
    const json = await this.#http.request(
      'POST',
      '/sessions',
      { amount: cents, currency: code.toLowerCase(), description: charge.description },
      { 'idempotency-key': idempotencyKey.data },
    );
    const created = createdSchema.safeParse(json);
    if (!created.success) {
      throw new ProviderError(this.id, 'malformed_response', 'create session answer lacks sessionId or url');
    }
    return {
      paymentId: created.data.sessionId,
      action: { kind: 'redirect', url: created.data.url },
      status: 'pending',
      rawStatus: 'pending',
    };
  }

  async getPayment(paymentId: string): Promise<ProviderPaymentState> {
    if (!paymentIdSchema.safeParse(paymentId).success) {
      throw new ProviderError(this.id, 'invalid_request', 'payment id must be a non-empty string');
    }
    const json = await this.#http.request('GET', `/sessions/${encodeURIComponent(paymentId)}`);
    const parsed = statusSchema.safeParse(json);
    if (!parsed.success) {
      throw new ProviderError(this.id, 'malformed_response', 'session status answer is not {status: string}');
    }
    const rawStatus = parsed.data.status ?? '';
    const status = mapWalleotStatus(rawStatus);
    if (status === 'unknown') {
      this.#logger.warn('walleot returned an undocumented session status; treating it as unknown', {
        provider: this.id,
        paymentId,
        rawStatus: rawStatus.slice(0, 100),
      });
    }
    // No `paid` amount: Walleot reports only `{ status }`; its session was created
    // for the intent's amount, which the router checks on providers that do report one.
    return { paymentId, status, rawStatus };
  }

  close(): Promise<void> {
    return this.#http.close();
  }
}

function parseBaseUrl(text: string): URL {
  const url = URL.canParse(text) ? new URL(text) : undefined;
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new ConfigError(
      'WalleotProvider baseUrl must be an http(s) URL such as https://api.walleot.com/v1',
    );
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new ConfigError('WalleotProvider baseUrl must not contain credentials, a query or a fragment');
  }
  return url;
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function parseCurrencies(codes: string[]): string[] {
  const out: string[] = [];
  for (const raw of codes) {
    const code = normalizeCurrency(raw);
    if (code === undefined) throw new ConfigError(`WalleotProvider: unknown currency "${raw}" in currencies`);
    if (currencyExponent(code) < WIRE_EXPONENT) {
      throw new ConfigError(`WalleotProvider: ${code} has no cents, and Walleot amounts are whole cents`);
    }
    if (!out.includes(code)) out.push(code);
  }
  return out;
}
