import type { PaymentStatus } from './intent/status.js';
import type { Money } from './money/money.js';

/** Per-currency limits in the currency's own minor units (payrouter's exponent table). */
export interface AmountLimits {
  min: number;
  max: number;
}

export interface FeeModel {
  /** Percentage fee in basis points (2.9% = 290). */
  percentBps: number;
  /** Fixed fee per payment, in minor units of the charge currency (approximate for non-USD). */
  fixedMinor: number;
  /** Short human description: "no fee", "2.9% + 30¢". */
  label: string;
}

export interface ProviderCapabilities {
  /** Human name of the method, shown when the user chooses: "Walleot balance", "Card (Stripe Checkout)". */
  label: string;
  /** Uppercase currency codes this provider accepts. */
  currencies: readonly string[];
  /** Limits per currency; a currency without an entry has min 1 minor unit and no practical max. */
  limits: Readonly<Record<string, AmountLimits>>;
  fee: FeeModel;
  /** Whether payment can complete with no user action beyond opening the link (pre-approved credits). */
  instant: boolean;
  /** Whether the provider sends signed webhooks we can verify. */
  webhooks: boolean;
  /** Whether the provider redirects the user back to our return page. */
  returnRedirect: boolean;
  refunds: boolean;
  cancel: boolean;
  /** Status reads per minute per API key the provider allows; the confirmation layer stays under it. */
  statusReadsPerMinute: number;
  /**
   * Whether payments go to a test environment (test keys, a sandbox): no real money moves. The
   * hosted pages show a test-mode banner from it.
   */
  testMode: boolean;
  /**
   * The payment lifetimes the provider accepts, in ms from creation (Stripe: 30 min to 24 h, with
   * a margin). A router refuses at construction a `paymentTtlMs` outside it, so the stored plan's
   * `expiresAt` can be sent unchanged on every retry. Undefined: any lifetime.
   */
  expiryWindowMs?: { min: number; max: number };
  /**
   * The machine-credential protocol an agent pays this provider with by itself (`'x402'`), for
   * providers whose action is `credential_required`. Such a provider is offered to agents (in the
   * payment-required result, first for clients known to pay by themselves), never as a link.
   */
  credential?: string;
}

/** What is to be charged. */
export interface Charge {
  money: Money;
  /** Shown to the payer on the checkout page. */
  description: string;
  /** The router's intent id; providers carry it as metadata where they can. */
  intentId: string;
}

export interface CreatePaymentOptions {
  /** Derived from the intent: the same key always describes the same payment. */
  idempotencyKey: string;
  metadata: Record<string, string>;
  /** Where the provider sends the user afterwards, when it redirects. */
  returnUrls?: { success: string; cancel: string };
  /**
   * When the payment link should stop working (ms since epoch), fixed once in the stored plan.
   * Sent as is on every retry (never recomputed from the clock at send time), so a retry under
   * the same idempotency key sends the same request; it lies within `capabilities.expiryWindowMs`
   * of the plan's creation.
   */
  expiresAt?: number;
}

/** A provider's view of one payment, normalised. */
export interface ProviderPaymentState {
  paymentId: string;
  status: PaymentStatus;
  /** The provider's own status words, e.g. `open/unpaid`, `cancelled`. */
  rawStatus: string;
  /**
   * What the provider says was paid, in payrouter minor units, where it reports it (Stripe's
   * `amount_total` and `currency`). A `paid` status counts only when this equals the intent's
   * amount and currency; a mismatch is treated as not paid and logged as an error.
   */
  paid?: Money;
}

/**
 * What the payer (or the agent) does next to pay a created payment.
 * - `redirect`: open `url` (a checkout page) in a browser.
 * - `invoice`: a payment request an agent's wallet can pay by itself, e.g. a Lightning BOLT11
 *   string; `scheme` names its format.
 * - `credential_required`: the agent presents a machine credential meeting `requirements`
 *   (provider-specific), checked with `verifyCredential`.
 */
export type PaymentAction =
  | { kind: 'redirect'; url: string }
  | { kind: 'invoice'; invoice: string; scheme: string }
  | { kind: 'credential_required'; requirements: unknown };

export interface CreatedPayment extends ProviderPaymentState {
  /** How the payment is made: today always a `redirect` to the checkout link. */
  action: PaymentAction;
  /** When the provider will expire the payment (ms since epoch), if known. */
  expiresAt?: number;
}

/** The checkout URL of a redirect action, or undefined for actions an agent completes by itself. */
export function redirectUrlOf(action: PaymentAction): string | undefined {
  return action.kind === 'redirect' ? action.url : undefined;
}

/** How the settlement of a verified credential ended. `receipt` is the provider's own (x402: SettleResponse). */
export interface CredentialSettlement {
  ok: boolean;
  receipt: Record<string, unknown>;
  /** Why it failed, for the payer. */
  reason?: string;
}

/** A verified webhook, normalised. */
export interface ProviderWebhookEvent extends ProviderPaymentState {
  eventId: string;
  type: string;
  /** The intent id the payment was created for, read from the provider's metadata. */
  intentId?: string;
}

export type HeaderBag = Record<string, string | string[] | undefined>;

/** Why a provider cannot take a charge, or undefined when it can. */
export type ChargeRefusal = string | undefined;

/**
 * A payment provider. A new provider is one folder under src/providers/ implementing this; it
 * loads its SDK or HTTP client lazily, on its first request, and keeps its secrets private
 * (printing or serialising a provider shows no key).
 * Methods throw ProviderError for every failure; none of them logs or throws secrets.
 *
 * `Id` is the provider's id as a literal type where it is known (`'walleot'`, `'stripe'`, or the
 * `id` option given): a router built from such providers accepts only their ids in a tool's
 * `providers`. A plain `string` id accepts any.
 */
export interface PaymentProvider<Id extends string = string> {
  readonly id: Id;
  readonly capabilities: ProviderCapabilities;
  /** Whether the provider can represent and accept this amount exactly (currency, minimum, maximum, digits). */
  refuseCharge(money: Money): ChargeRefusal;
  createPayment(charge: Charge, options: CreatePaymentOptions): Promise<CreatedPayment>;
  getPayment(paymentId: string): Promise<ProviderPaymentState>;
  cancelPayment?(paymentId: string): Promise<ProviderPaymentState>;
  refundPayment?(paymentId: string): Promise<void>;
  /**
   * Verify and parse a webhook from its raw body. Rejects with WebhookError on anything forged,
   * stale or malformed; resolves null for a verified event of a type that does not concern payments.
   */
  parseWebhook?(rawBody: string | Uint8Array, headers: HeaderBag): Promise<ProviderWebhookEvent | null>;
  /**
   * For providers an agent pays by itself (`credential_required`): check a presented credential
   * against the charge. Resolves the payment's state (paid, or authorized once settled after the
   * run); rejects with ProviderError when the credential does not pay this charge.
   */
  verifyCredential?(credential: unknown, charge: Charge): Promise<ProviderPaymentState>;
  /**
   * The requirements a credential for this charge must meet, computed locally with no request
   * (the same as `createPayment`'s `credential_required` action): every payment-required result
   * carries them beside the human methods.
   */
  offerCredential?(charge: Charge): unknown;
  /**
   * Settle a verified credential after a successful run. Resolves the receipt (`ok: false` with a
   * reason when the settlement failed: then the result is withheld); called at most once per
   * credential (the engine records the settlement with compare-and-set before asking).
   */
  settleCredential?(credential: unknown, charge: Charge): Promise<CredentialSettlement>;
  /** Release pooled connections. */
  close?(): Promise<void>;
}
