import { createHash } from 'node:crypto';
import type Stripe from 'stripe';
import { z } from 'zod';
import { ConfigError, ProviderError, WebhookError } from '../../core/errors.js';
import type { PaymentStatus } from '../../core/intent/status.js';
import {
  consoleLogger,
  type Logger,
  namespaced,
  redactingLogger,
  redactText,
  registerSecret,
} from '../../core/logger.js';
import { currencyExponent, normalizeCurrency } from '../../core/money/currencies.js';
import { formatMoney, type Money } from '../../core/money/money.js';
import type {
  AmountLimits,
  Charge,
  ChargeRefusal,
  CreatedPayment,
  CreatePaymentOptions,
  HeaderBag,
  PaymentProvider,
  ProviderCapabilities,
  ProviderPaymentState,
  ProviderWebhookEvent,
} from '../../core/provider.js';
import {
  convertToStripe,
  fromStripeAmount,
  STRIPE_CURRENCIES,
  STRIPE_MAX_AMOUNT,
  STRIPE_OPT_IN_CURRENCIES,
  stripeLimitsIn,
  stripeMinimum,
} from './currencies.js';
import { stripeProviderError } from './errors.js';
import { loadStripe, type StripeModule } from './sdk.js';
import {
  intentIdOf,
  mapSessionStatus,
  paidAmountOf,
  paymentIntentIdOf,
  type SessionView,
  sessionSchema,
} from './statuses.js';

export { fromStripeAmount, toStripeAmount } from './currencies.js';

/**
 * Card payments through Stripe Checkout Sessions, over the
 * official `stripe` SDK. Amounts are converted exactly from payrouter minor units to Stripe's
 * unit and refused before any request when Stripe would refuse them; every create carries the
 * router's idempotency key and the intent id; status reads both `status` and `payment_status`;
 * webhooks are verified with the SDK. The SDK is loaded on the first request (so importing or
 * building a provider costs nothing), and the key, the webhook secret and the SDK client live in
 * private fields: printing or serialising the provider shows only its id and mode.
 */

/** `Id`: the `id` option's type, so a literal id types the routers built with this provider. */
export interface StripeProviderOptions<Id extends string = string> {
  /** Stripe secret key (`sk_live_…`, `sk_test_…`) or restricted key (`rk_…`). */
  apiKey: string;
  /** Signing secret of the webhook endpoint (`whsec_…`); without it, webhooks are off. */
  webhookSecret?: string;
  /** Options for the Stripe SDK constructor: host, port, protocol, timeout, maxNetworkRetries, httpClient… */
  stripe?: Stripe.StripeConfig;
  /** Currencies to accept (any case); default: every Stripe currency payrouter knows, except opt-in ones. */
  currencies?: string[];
  /** Provider id used in routing and tool overrides (default `stripe`). */
  id?: Id;
  logger?: Logger;
}

const loggerSchema = z.custom<Logger>(
  (v) =>
    typeof v === 'object' &&
    v !== null &&
    ['debug', 'info', 'warn', 'error'].every((m) => typeof (v as Record<string, unknown>)[m] === 'function'),
  { error: 'logger must have debug, info, warn and error methods' },
);

const optionsSchema = z.object({
  apiKey: z.string().optional(),
  webhookSecret: z.string().optional(),
  stripe: z.record(z.string(), z.unknown()).optional(),
  currencies: z.array(z.string()).min(1).optional(),
  id: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,40}$/, { error: 'id must be 1-40 letters, digits, "_" or "-"' })
    .optional(),
  logger: loggerSchema.optional(),
});

const DEFAULT_ID = 'stripe';
/**
 * Stripe takes `expires_at` 30 min to 24 h after creation. The window offered to the router keeps
 * a minute clear of both edges, for the time between planning a payment and Stripe receiving it.
 */
export const STRIPE_EXPIRY_WINDOW_MS: Readonly<{ min: number; max: number }> = Object.freeze({
  min: 31 * 60 * 1000,
  max: (24 * 60 - 1) * 60 * 1000,
});
/** Keys the stripe SDK's constructor accepts (stripe 23: it throws on any other). */
const STRIPE_CONFIG_KEYS: ReadonlySet<string> = new Set([
  'authenticator',
  'apiVersion',
  'typescript',
  'maxNetworkRetries',
  'httpAgent',
  'httpClient',
  'timeout',
  'host',
  'port',
  'protocol',
  'telemetry',
  'emitEventBodies',
  'appInfo',
  'stripeAccount',
  'stripeContext',
] satisfies ReadonlyArray<keyof Stripe.StripeConfig>);
const MAX_PRODUCT_NAME = 250;
const MAX_CLIENT_REFERENCE = 200;
const MAX_METADATA_VALUE = 500;
const MAX_IDEMPOTENCY_KEY = 255;
const WEBHOOK_TOLERANCE_S = 300;
const SESSION_ID = /^cs_(test|live)_[A-Za-z0-9]+$/;

const WEBHOOK_STATUS = {
  'checkout.session.async_payment_succeeded': 'paid',
  'checkout.session.async_payment_failed': 'failed',
  'checkout.session.expired': 'expired',
} as const;

const eventSchema = z.object({
  id: z.string().min(1),
  object: z.literal('event'),
  type: z.string().min(1),
  data: z.object({ object: z.unknown() }),
});

export class StripeProvider<Id extends string = 'stripe'> implements PaymentProvider<Id> {
  readonly id: Id;
  readonly capabilities: ProviderCapabilities;
  readonly #apiKey: string;
  readonly #webhookSecret: string | undefined;
  readonly #config: Stripe.StripeConfig;
  readonly #logger: Logger;
  readonly #currencySet: ReadonlySet<string>;
  #client: Promise<{ sdk: StripeModule; client: Stripe }> | undefined;

  constructor(options: StripeProviderOptions<Id>) {
    const parsed = optionsSchema.safeParse(options ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? issue.path.join('.') : 'options';
      throw new ConfigError(`StripeProvider: invalid ${where}: ${issue?.message ?? 'invalid options'}`);
    }
    const { apiKey, webhookSecret, currencies, id, logger } = parsed.data;
    // Without an `id` option `Id` is its default, 'stripe'.
    this.id = (id ?? DEFAULT_ID) as Id;
    const trimmedKey = apiKey?.trim() ?? '';
    if (trimmedKey === '') {
      throw new ConfigError(
        'StripeProvider needs apiKey: your Stripe secret key, e.g. new StripeProvider({ apiKey: process.env.STRIPE_SECRET_KEY }) (is STRIPE_SECRET_KEY set?)',
      );
    }
    if (/^pk_/.test(trimmedKey)) {
      throw new ConfigError(
        'StripeProvider apiKey is a publishable key (pk_…); it needs the secret key (sk_…) or a restricted key (rk_…)',
      );
    }
    registerSecret(trimmedKey);
    if (webhookSecret !== undefined && webhookSecret.trim() === '') {
      throw new ConfigError(
        'StripeProvider webhookSecret is empty; pass the endpoint signing secret (whsec_…) or leave it out to disable webhooks',
      );
    }
    this.#apiKey = trimmedKey;
    this.#webhookSecret = webhookSecret?.trim();
    registerSecret(this.#webhookSecret);
    this.#logger = namespaced(logger === undefined ? consoleLogger() : redactingLogger(logger), 'stripe');

    this.#currencySet = new Set(resolveCurrencies(currencies));

    // The SDK is built on first use; its one construction-time check (known keys) is made here.
    const unknownKey = Object.keys(options.stripe ?? {}).find((key) => !STRIPE_CONFIG_KEYS.has(key));
    if (unknownKey !== undefined) {
      throw new ConfigError(
        `StripeProvider: invalid stripe options: unknown key "${unknownKey.slice(0, 40)}" (the stripe SDK accepts ${[...STRIPE_CONFIG_KEYS].join(', ')})`,
      );
    }
    this.#config = { telemetry: false, ...options.stripe };

    const limits: Record<string, AmountLimits> = {};
    for (const code of this.#currencySet) limits[code] = stripeLimitsIn(code, currencyExponent(code));
    this.capabilities = Object.freeze({
      label: 'Card (Stripe Checkout)',
      currencies: Object.freeze([...this.#currencySet]),
      limits: Object.freeze(limits),
      fee: Object.freeze({ percentBps: 290, fixedMinor: 30, label: '2.9% + 30¢' }),
      instant: false,
      webhooks: this.#webhookSecret !== undefined,
      returnRedirect: true,
      refunds: true,
      cancel: true,
      // Test mode allows 25 requests per second per account (live: 100); stay within test mode's.
      statusReadsPerMinute: 1200,
      testMode: /^(sk|rk)_test_/.test(trimmedKey),
      expiryWindowMs: STRIPE_EXPIRY_WINDOW_MS,
    });
  }

  /** A safe one-line summary: no key, no secret, no SDK client. */
  toString(): string {
    return `StripeProvider { id: '${this.id}', mode: '${this.capabilities.testMode ? 'test' : 'live'}' }`;
  }

  toJSON(): { provider: 'StripeProvider'; id: string; mode: 'test' | 'live'; webhooks: boolean } {
    return {
      provider: 'StripeProvider',
      id: this.id,
      mode: this.capabilities.testMode ? 'test' : 'live',
      webhooks: this.capabilities.webhooks,
    };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  /** The stripe SDK and a client, built once, on the first request. */
  #stripe(): Promise<{ sdk: StripeModule; client: Stripe }> {
    if (this.#client === undefined) {
      const client = loadStripe().then((sdk) => {
        try {
          return { sdk, client: new sdk(this.#apiKey, this.#config) };
        } catch (error) {
          const text = error instanceof Error ? error.message : String(error);
          throw new ConfigError(`StripeProvider: invalid stripe options: ${redactText(text)}`);
        }
      });
      // A failed load (the stripe package missing) is not kept: the next request tries again.
      client.catch(() => {
        if (this.#client === client) this.#client = undefined;
      });
      this.#client = client;
    }
    return this.#client;
  }

  /**
   * One SDK call with a debug line like Walleot's: method, path, status and latency, never a
   * secret. The error, if any, is mapped to a ProviderError.
   */
  async #call<T>(
    method: 'GET' | 'POST',
    path: string,
    action: string,
    send: (client: Stripe, sdk: StripeModule) => Promise<T>,
  ): Promise<T> {
    let sdk: StripeModule | undefined;
    const started = performance.now();
    try {
      const loaded = await this.#stripe();
      sdk = loaded.sdk;
      const result = await send(loaded.client, sdk);
      const response = (
        result as { lastResponse?: { statusCode?: unknown; requestId?: unknown } } | undefined
      )?.lastResponse;
      this.#logger.debug('stripe request', {
        provider: this.id,
        method,
        path,
        status: typeof response?.statusCode === 'number' ? response.statusCode : 200,
        ...(typeof response?.requestId === 'string' ? { requestId: response.requestId } : {}),
        durationMs: Math.round(performance.now() - started),
      });
      return result;
    } catch (error) {
      const mapped = stripeProviderError(this.id, error, action, sdk);
      this.#logger.debug('stripe request', {
        provider: this.id,
        method,
        path,
        ...(mapped.status === undefined ? { error: mapped.code } : { status: mapped.status }),
        ...(requestIdOf(error) === undefined ? {} : { requestId: requestIdOf(error) }),
        durationMs: Math.round(performance.now() - started),
      });
      throw mapped;
    }
  }

  refuseCharge(money: Money): ChargeRefusal {
    const code = normalizeCurrency(money.currency);
    if (code === undefined || !this.#currencySet.has(code)) {
      const supported = code !== undefined && STRIPE_CURRENCIES.has(code.toLowerCase());
      return supported
        ? `StripeProvider "${this.id}" is not configured for ${code} (add it to currencies)`
        : `Stripe does not support the currency ${money.currency}`;
    }
    const converted = convertToStripe(money);
    if ('refusal' in converted) return converted.refusal;
    const minimum = stripeMinimum(converted.currency);
    if (converted.amount < minimum) {
      return `${formatMoney(money)} is below Stripe's minimum charge of ${describe(minimum, code)}`;
    }
    if (converted.amount > STRIPE_MAX_AMOUNT) {
      return `${formatMoney(money)} is above Stripe's maximum charge of ${describe(STRIPE_MAX_AMOUNT, code)}`;
    }
    return undefined;
  }

  async createPayment(charge: Charge, options: CreatePaymentOptions): Promise<CreatedPayment> {
    const refusal = this.refuseCharge(charge.money);
    if (refusal !== undefined) throw new ProviderError(this.id, 'invalid_request', refusal);
    const converted = convertToStripe(charge.money) as { amount: number; currency: string };

    const params: Stripe.Checkout.SessionCreateParams = {
      mode: 'payment',
      line_items: [
        {
          price_data: {
            currency: converted.currency,
            unit_amount: converted.amount,
            product_data: { name: productName(charge.description) },
          },
          quantity: 1,
        },
      ],
      metadata: this.buildMetadata(options.metadata, charge.intentId),
    };
    if (charge.intentId.length <= MAX_CLIENT_REFERENCE) params.client_reference_id = charge.intentId;
    // From the stored plan, unchanged: a retry under the same key must send the same parameters.
    if (options.expiresAt !== undefined && Number.isFinite(options.expiresAt)) {
      params.expires_at = Math.floor(options.expiresAt / 1000);
    }
    if (options.returnUrls !== undefined) {
      params.success_url = options.returnUrls.success;
      params.cancel_url = options.returnUrls.cancel;
    }

    const created = await this.#call('POST', '/v1/checkout/sessions', 'create Checkout Session', (stripe) =>
      stripe.checkout.sessions.create(params, {
        idempotencyKey: stripeIdempotencyKey(options.idempotencyKey),
      }),
    );
    const session = this.readSession(created, 'create');
    if (typeof session.url !== 'string' || session.url === '') {
      throw new ProviderError(
        this.id,
        'malformed_response',
        `create Checkout Session: Stripe returned session ${session.id} without a checkout url`,
      );
    }
    const state = this.state(session);
    this.#logger.debug('stripe: checkout session created', {
      paymentId: session.id,
      intentId: charge.intentId,
      rawStatus: state.rawStatus,
    });
    return {
      ...state,
      action: { kind: 'redirect', url: session.url },
      ...(typeof session.expires_at === 'number' ? { expiresAt: session.expires_at * 1000 } : {}),
    };
  }

  async getPayment(paymentId: string): Promise<ProviderPaymentState> {
    this.checkSessionId(paymentId);
    const session = await this.#call(
      'GET',
      `/v1/checkout/sessions/${paymentId}`,
      `retrieve Checkout Session ${paymentId}`,
      (stripe) => stripe.checkout.sessions.retrieve(paymentId, { expand: ['payment_intent'] }),
    );
    return this.state(this.readSession(session, 'retrieve'));
  }

  /** Expire an open session; a session that is no longer open is returned as it stands. */
  async cancelPayment(paymentId: string): Promise<ProviderPaymentState> {
    this.checkSessionId(paymentId);
    let session: unknown;
    try {
      session = await this.#call(
        'POST',
        `/v1/checkout/sessions/${paymentId}/expire`,
        `expire Checkout Session ${paymentId}`,
        (stripe) => stripe.checkout.sessions.expire(paymentId),
      );
    } catch (error) {
      if (!(error instanceof ProviderError) || error.code !== 'invalid_request' || error.status !== 400) {
        throw error;
      }
      const current = await this.getPayment(paymentId);
      if (current.rawStatus.startsWith('open/')) throw error;
      return current;
    }
    return this.state(this.readSession(session, 'expire'));
  }

  /** Refund the whole payment of a paid session; a payment already refunded counts as done. */
  async refundPayment(paymentId: string): Promise<void> {
    this.checkSessionId(paymentId);
    const session = this.readSession(
      await this.#call(
        'GET',
        `/v1/checkout/sessions/${paymentId}`,
        `retrieve Checkout Session ${paymentId}`,
        (stripe) => stripe.checkout.sessions.retrieve(paymentId),
      ),
      'retrieve',
    );
    const intentId = paymentIntentIdOf(session);
    const rawStatus = mapSessionStatus(session).rawStatus;
    if (intentId === undefined) {
      throw new ProviderError(
        this.id,
        'invalid_request',
        `Checkout Session ${paymentId} has no payment to refund (${rawStatus})`,
      );
    }
    const refunded = await this.#call(
      'POST',
      '/v1/refunds',
      `refund Checkout Session ${paymentId}`,
      async (stripe, sdk) => {
        try {
          // One key per session: a retried refund replays instead of refunding twice.
          await stripe.refunds.create(
            { payment_intent: intentId },
            { idempotencyKey: stripeIdempotencyKey(`payrouter-refund-${paymentId}`) },
          );
          return true;
        } catch (error) {
          if (
            error instanceof sdk.errors.StripeInvalidRequestError &&
            error.code === 'charge_already_refunded'
          ) {
            return false;
          }
          throw error;
        }
      },
    );
    if (refunded) this.#logger.info('stripe: payment refunded', { paymentId });
  }

  async parseWebhook(rawBody: string | Uint8Array, headers: HeaderBag): Promise<ProviderWebhookEvent | null> {
    const secret = this.#webhookSecret;
    if (secret === undefined) {
      throw new WebhookError('Stripe webhooks are not configured: pass webhookSecret to StripeProvider');
    }
    const header = headerValue(headers, 'stripe-signature');
    if (header === undefined || header.trim() === '') {
      throw new WebhookError('Stripe webhook without a Stripe-Signature header');
    }
    const { sdk, client } = await this.#stripe();
    let verified: unknown;
    try {
      verified = client.webhooks.constructEvent(rawBody, header, secret, WEBHOOK_TOLERANCE_S);
    } catch (error) {
      if (error instanceof sdk.errors.StripeSignatureVerificationError) {
        const stale = /tolerance/i.test(error.message);
        throw new WebhookError(
          stale
            ? 'Stripe webhook timestamp is too old (replayed or delayed delivery)'
            : 'Stripe webhook signature does not match (wrong signing secret, or the body was altered)',
        );
      }
      throw new WebhookError('Stripe webhook body is not valid JSON');
    }
    const event = eventSchema.safeParse(verified);
    if (!event.success) throw new WebhookError('Stripe webhook is not a Stripe event object');
    const { id: eventId, type } = event.data;
    if (
      type !== 'checkout.session.completed' &&
      type !== 'checkout.session.async_payment_succeeded' &&
      type !== 'checkout.session.async_payment_failed' &&
      type !== 'checkout.session.expired'
    ) {
      return null;
    }
    const session = sessionSchema.safeParse(event.data.data.object);
    if (!session.success) throw new WebhookError(`Stripe webhook ${type} does not carry a Checkout Session`);
    const mapped = mapSessionStatus(session.data);
    // completed reports the session as it stands; the async and expiry events are the outcome itself.
    const status = type === 'checkout.session.completed' ? mapped.status : WEBHOOK_STATUS[type];
    if (type === 'checkout.session.completed' && !mapped.known) {
      this.#logger.warn('stripe: webhook session in an unexpected state', {
        eventId,
        rawStatus: mapped.rawStatus,
      });
    }
    const intentId = intentIdOf(session.data);
    return {
      eventId,
      type,
      ...this.withPaidAmount(session.data, status, mapped.rawStatus),
      ...(intentId === undefined ? {} : { intentId }),
    };
  }

  private state(session: SessionView): ProviderPaymentState {
    const mapped = mapSessionStatus(session);
    if (!mapped.known) {
      this.#logger.warn('stripe: Checkout Session in an unexpected state; treating it as unknown', {
        paymentId: session.id,
        rawStatus: mapped.rawStatus,
      });
    }
    return this.withPaidAmount(session, mapped.status, mapped.rawStatus);
  }

  /**
   * A paid state carries what the session says was paid (`amount_total`, `currency`), so the
   * router can check it against the intent. A "paid" session whose amount cannot be read is
   * `unknown`: never paid on trust.
   */
  private withPaidAmount(
    session: SessionView,
    status: PaymentStatus,
    rawStatus: string,
  ): ProviderPaymentState {
    if (status !== 'paid') return { paymentId: session.id, status, rawStatus };
    const paid = paidAmountOf(session);
    if (paid === undefined) {
      this.#logger.warn('stripe: paid Checkout Session without a readable amount_total and currency', {
        paymentId: session.id,
        rawStatus,
      });
      return { paymentId: session.id, status: 'unknown', rawStatus };
    }
    return { paymentId: session.id, status, rawStatus, paid };
  }

  private readSession(value: unknown, action: string): SessionView {
    const parsed = sessionSchema.safeParse(value);
    if (!parsed.success) {
      throw new ProviderError(
        this.id,
        'malformed_response',
        `${action}: Stripe's answer is not a Checkout Session`,
      );
    }
    return parsed.data;
  }

  private checkSessionId(paymentId: string): void {
    if (typeof paymentId !== 'string' || !SESSION_ID.test(paymentId)) {
      throw new ProviderError(this.id, 'not_found', 'not a Stripe Checkout Session id (cs_…)');
    }
  }

  /** Caller metadata plus the intent id, within Stripe's limits (50 keys, 40-char keys, 500-char values). */
  private buildMetadata(metadata: Record<string, string>, intentId: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(metadata)) {
      if (key === '' || key.length > 40 || /[[\]]/.test(key)) {
        throw new ProviderError(
          this.id,
          'invalid_request',
          `metadata key "${key.slice(0, 60)}" is not accepted by Stripe (1-40 characters, no square brackets)`,
        );
      }
      if (typeof value !== 'string' || value === '') continue; // Stripe reads an empty value as "unset"
      out[key] = truncate(value, MAX_METADATA_VALUE);
    }
    out['payrouter_intent'] = truncate(intentId, MAX_METADATA_VALUE);
    if (Object.keys(out).length > 50) {
      throw new ProviderError(this.id, 'invalid_request', 'Stripe accepts at most 50 metadata keys');
    }
    return out;
  }
}

function resolveCurrencies(requested: string[] | undefined): string[] {
  if (requested === undefined) {
    return [...STRIPE_CURRENCIES]
      .filter((c) => !STRIPE_OPT_IN_CURRENCIES.has(c))
      .map((c) => c.toUpperCase())
      .sort();
  }
  const out = new Set<string>();
  for (const raw of requested) {
    const code = normalizeCurrency(raw);
    if (code === undefined || !STRIPE_CURRENCIES.has(code.toLowerCase())) {
      throw new ConfigError(
        `StripeProvider: currency "${String(raw).slice(0, 20)}" is not one Stripe supports (see docs.stripe.com/currencies)`,
      );
    }
    out.add(code);
  }
  return [...out];
}

function describe(stripeAmount: number, currency: string): string {
  const m = fromStripeAmount(stripeAmount, currency);
  return m === undefined ? `${stripeAmount} ${currency}` : formatMoney(m);
}

function productName(description: string): string {
  const name = description.replace(/\s+/g, ' ').trim();
  return name === '' ? 'Payment' : truncate(name, MAX_PRODUCT_NAME);
}

function truncate(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** Stripe caps keys at 255 characters; longer ones are replaced by a stable digest. */
function stripeIdempotencyKey(key: string): string {
  return key.length <= MAX_IDEMPOTENCY_KEY
    ? key
    : `payrouter-sha256-${createHash('sha256').update(key).digest('hex')}`;
}

/** Stripe's request id of a failed call (`Request-Id`), for the operator; never a secret. */
function requestIdOf(error: unknown): string | undefined {
  const id =
    typeof error === 'object' && error !== null ? (error as { requestId?: unknown }).requestId : undefined;
  return typeof id === 'string' ? id : undefined;
}

function headerValue(headers: HeaderBag, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    return Array.isArray(value) ? (value.length === 1 ? value[0] : undefined) : value;
  }
  return undefined;
}
