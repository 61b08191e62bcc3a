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
  /** When the payment link should stop working (ms since epoch); providers clamp to their window. */
  expiresAt?: number;
}

/** A provider's view of one payment, normalised. */
export interface ProviderPaymentState {
  paymentId: string;
  status: PaymentStatus;
  /** The provider's own status words, e.g. `open/unpaid`, `cancelled`. */
  rawStatus: string;
}

export interface CreatedPayment extends ProviderPaymentState {
  /** The checkout link to hand the user. */
  url: string;
  /** When the provider will expire the payment (ms since epoch), if known. */
  expiresAt?: number;
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
 * A payment provider. A new provider is one file implementing this.
 * Methods throw ProviderError for every failure; none of them logs or throws secrets.
 */
export interface PaymentProvider {
  readonly id: string;
  readonly capabilities: ProviderCapabilities;
  /** Whether the provider can represent and accept this amount exactly (currency, minimum, maximum, digits). */
  refuseCharge(money: Money): ChargeRefusal;
  createPayment(charge: Charge, options: CreatePaymentOptions): Promise<CreatedPayment>;
  getPayment(paymentId: string): Promise<ProviderPaymentState>;
  cancelPayment?(paymentId: string): Promise<ProviderPaymentState>;
  refundPayment?(paymentId: string): Promise<void>;
  /**
   * Verify and parse a webhook from its raw body. Throws WebhookError on anything forged, stale or
   * malformed; returns null for a verified event of a type that does not concern payments.
   */
  parseWebhook?(rawBody: string | Uint8Array, headers: HeaderBag): ProviderWebhookEvent | null;
  /** Release pooled connections. */
  close?(): Promise<void>;
}
