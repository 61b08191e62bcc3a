import type Stripe from 'stripe';
import type { SandboxClock } from './harness.js';
import { stripeId } from './stripe-ids.js';
import type { CreateSessionInput, LineItemInput, RefundInput } from './stripe-validation.js';

/**
 * Checkout Sessions of the Stripe stand-in and their lifecycle, as Stripe documents it:
 * open/unpaid → complete/paid (card), → complete/unpaid then paid or failed (async methods),
 * open → expired (expire call, or `expires_at` passing on the sandbox clock, noticed lazily on
 * every read). `url` exists only while open; `payment_intent` is null until the customer pays.
 */

export type CheckoutEventType =
  | 'checkout.session.completed'
  | 'checkout.session.async_payment_succeeded'
  | 'checkout.session.async_payment_failed'
  | 'checkout.session.expired';

/** The API request that caused an event, for the event's `request` field. */
export interface EventCause {
  requestId: string | null;
  idempotencyKey: string | null;
}

export type EmitEvent = (
  type: CheckoutEventType,
  session: Stripe.Checkout.Session,
  cause?: EventCause,
) => void;

/** A transition that is not allowed, with the HTTP answer Stripe gives for it. */
export class SandboxStateError extends Error {
  readonly status: number;
  readonly stripeCode: string | undefined;
  readonly param: string | undefined;
  constructor(status: number, message: string, options: { code?: string; param?: string } = {}) {
    super(message);
    this.name = 'SandboxStateError';
    this.status = status;
    this.stripeCode = options.code;
    this.param = options.param;
  }
}

interface SessionRecord {
  session: Stripe.Checkout.Session;
  paymentIntent: Stripe.PaymentIntent | undefined;
  lineItems: LineItemInput[];
  refunds: Stripe.Refund[];
}

export type AsyncOutcome = 'succeeded' | 'failed';

export class StripeSessionStore {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly sessionByPaymentIntent = new Map<string, string>();

  constructor(
    private readonly clock: SandboxClock,
    /** The stand-in's origin, for checkout links (known once it listens). */
    private readonly checkoutBase: () => string,
    private readonly emit: EmitEvent,
  ) {}

  create(input: CreateSessionInput): Stripe.Checkout.Session {
    const id = stripeId('cs_test_', 58);
    const session: Stripe.Checkout.Session = {
      id,
      object: 'checkout.session',
      adaptive_pricing: { enabled: false },
      after_expiration: null,
      allow_promotion_codes: null,
      allowed_payment_method_types: input.allowedPaymentMethodTypes ?? null,
      amount_subtotal: input.amountTotal,
      amount_total: input.amountTotal,
      automatic_tax: { enabled: false, liability: null, provider: null, status: null },
      billing_address_collection: null,
      cancel_url: input.cancelUrl ?? null,
      client_reference_id: input.clientReferenceId ?? null,
      client_secret: null,
      collected_information: null,
      consent: null,
      consent_collection: null,
      created: this.clock.nowSeconds(),
      currency: input.currency,
      currency_conversion: null,
      custom_fields: [],
      custom_text: {
        after_submit: null,
        shipping_address: null,
        submit: null,
        terms_of_service_acceptance: null,
      },
      customer: null,
      customer_account: null,
      customer_creation: 'if_required',
      customer_details: null,
      customer_email: input.customerEmail ?? null,
      discounts: [],
      expires_at: input.expiresAt,
      integration_identifier: null,
      invoice: null,
      invoice_creation: null,
      livemode: false,
      locale: null,
      managed_payments: null,
      metadata: { ...input.metadata },
      mode: 'payment',
      origin_context: null,
      payment_intent: null,
      payment_link: null,
      payment_method_collection: 'if_required',
      payment_method_configuration_details: null,
      payment_method_options: {},
      payment_method_types: ['card'],
      payment_status: 'unpaid',
      permissions: null,
      recovered_from: null,
      saved_payment_method_options: null,
      setup_intent: null,
      shipping_address_collection: null,
      shipping_cost: null,
      shipping_options: [],
      status: 'open',
      submit_type: null,
      subscription: null,
      success_url: input.successUrl ?? null,
      total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
      ui_mode: 'hosted_page',
      url: `${this.checkoutBase()}/checkout/${id}`,
      wallet_options: null,
    };
    this.sessions.set(id, { session, paymentIntent: undefined, lineItems: input.lineItems, refunds: [] });
    return this.snapshot(id, false) as Stripe.Checkout.Session;
  }

  /** The session as the API shows it now (a copy), or undefined for an unknown id. */
  snapshot(id: string, expandPaymentIntent: boolean): Stripe.Checkout.Session | undefined {
    const record = this.read(id);
    if (record === undefined) return undefined;
    const copy = structuredClone(record.session);
    if (expandPaymentIntent && record.paymentIntent !== undefined) {
      copy.payment_intent = structuredClone(record.paymentIntent);
    }
    return copy;
  }

  /** Line items and refunds, for the checkout page and test assertions. */
  details(
    id: string,
  ): { lineItems: readonly LineItemInput[]; refunds: readonly Stripe.Refund[] } | undefined {
    const record = this.read(id);
    return record === undefined ? undefined : { lineItems: record.lineItems, refunds: record.refunds };
  }

  list(): Stripe.Checkout.Session[] {
    return [...this.sessions.keys()].map((id) => this.snapshot(id, false) as Stripe.Checkout.Session);
  }

  /** Card payment: complete/paid at once. */
  pay(id: string): Stripe.Checkout.Session {
    const record = this.requireOpen(id, 'paid');
    record.paymentIntent = this.newPaymentIntent(record.session, 'succeeded', 'card');
    this.complete(record, 'paid');
    this.emit('checkout.session.completed', this.copy(record));
    return this.copy(record);
  }

  /**
   * Delayed-notification method (bank debit): an open session becomes complete/unpaid with a
   * `processing` PaymentIntent; with an outcome, that outcome follows (also for a session
   * already awaiting one).
   */
  payAsync(id: string, outcome?: AsyncOutcome): Stripe.Checkout.Session {
    const record = this.require(id);
    const session = record.session;
    if (session.status === 'open') {
      record.paymentIntent = this.newPaymentIntent(session, 'processing', 'us_bank_account');
      this.complete(record, 'unpaid');
      this.emit('checkout.session.completed', this.copy(record));
    } else if (!(session.status === 'complete' && record.paymentIntent?.status === 'processing')) {
      throw new SandboxStateError(
        400,
        `Checkout Session ${id} is ${session.status}/${session.payment_status}; only an open session or one awaiting an async payment can take one.`,
      );
    } else if (outcome === undefined) {
      throw new SandboxStateError(400, `Checkout Session ${id} already awaits an async outcome; pass one.`);
    }
    if (outcome !== undefined) this.settleAsync(record, outcome);
    return this.copy(record);
  }

  /** `POST /v1/checkout/sessions/:id/expire`: only an open session can be expired. */
  expire(id: string, cause?: EventCause): Stripe.Checkout.Session {
    const record = this.require(id);
    if (record.session.status !== 'open') {
      throw new SandboxStateError(
        400,
        `Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${record.session.status}".`,
      );
    }
    this.markExpired(record, cause);
    return this.copy(record);
  }

  /** Expire an open session as if its `expires_at` had passed. */
  lapse(id: string): Stripe.Checkout.Session {
    const record = this.requireOpen(id, 'lapsed');
    this.markExpired(record);
    return this.copy(record);
  }

  refund(input: RefundInput): Stripe.Refund {
    const sessionId = this.sessionByPaymentIntent.get(input.paymentIntent);
    const record = sessionId === undefined ? undefined : this.read(sessionId);
    const intent = record?.paymentIntent;
    if (record === undefined || intent === undefined) {
      throw new SandboxStateError(404, `No such payment_intent: '${input.paymentIntent}'`, {
        code: 'resource_missing',
        param: 'payment_intent',
      });
    }
    if (intent.status !== 'succeeded') {
      throw new SandboxStateError(
        400,
        `This PaymentIntent (${intent.id}) does not have a successful charge to refund.`,
        { param: 'payment_intent' },
      );
    }
    const refunded = record.refunds.reduce((sum, r) => sum + r.amount, 0);
    const remaining = intent.amount_received - refunded;
    if (remaining <= 0) {
      throw new SandboxStateError(400, `Charge ${String(intent.latest_charge)} has already been refunded.`, {
        code: 'charge_already_refunded',
      });
    }
    const amount = input.amount ?? remaining;
    if (amount > remaining) {
      throw new SandboxStateError(
        400,
        `Refund amount (${amount}) is greater than unrefunded amount on charge (${remaining})`,
        { param: 'amount' },
      );
    }
    const refund: Stripe.Refund = {
      id: stripeId('re_'),
      object: 'refund',
      amount,
      balance_transaction: null,
      charge: intent.latest_charge,
      created: this.clock.nowSeconds(),
      currency: intent.currency,
      customer: null,
      customer_account: null,
      metadata: {},
      payment_intent: intent.id,
      payment_method: intent.payment_method,
      reason: null,
      receipt_number: null,
      source_transfer_reversal: null,
      status: 'succeeded',
      transfer_reversal: null,
    };
    record.refunds.push(refund);
    return structuredClone(refund);
  }

  clear(): void {
    this.sessions.clear();
    this.sessionByPaymentIntent.clear();
  }

  /** The live record, lapsed first when its expiry has passed on the sandbox clock. */
  private read(id: string): SessionRecord | undefined {
    const record = this.sessions.get(id);
    if (record?.session.status === 'open' && this.clock.nowSeconds() >= record.session.expires_at) {
      this.markExpired(record);
    }
    return record;
  }

  private require(id: string): SessionRecord {
    const record = this.read(id);
    if (record === undefined) {
      throw new SandboxStateError(404, `No such checkout.session: '${id}'`, {
        code: 'resource_missing',
        param: 'session',
      });
    }
    return record;
  }

  private requireOpen(id: string, wanted: string): SessionRecord {
    const record = this.require(id);
    if (record.session.status !== 'open') {
      throw new SandboxStateError(
        400,
        `Checkout Session ${id} is ${record.session.status}, so it cannot be ${wanted}; only an open session can.`,
      );
    }
    return record;
  }

  private complete(record: SessionRecord, paymentStatus: 'paid' | 'unpaid'): void {
    const session = record.session;
    const intent = record.paymentIntent as Stripe.PaymentIntent;
    session.status = 'complete';
    session.payment_status = paymentStatus;
    session.url = null;
    session.payment_intent = intent.id;
    session.payment_method_types = [...intent.payment_method_types];
    session.customer_details = {
      address: null,
      business_name: null,
      email: 'customer@example.com',
      individual_name: null,
      name: 'Sandbox Customer',
      phone: null,
      tax_exempt: 'none',
      tax_ids: [],
    };
    this.sessionByPaymentIntent.set(intent.id, session.id);
  }

  private settleAsync(record: SessionRecord, outcome: AsyncOutcome): void {
    const intent = record.paymentIntent as Stripe.PaymentIntent;
    if (outcome === 'succeeded') {
      intent.status = 'succeeded';
      intent.amount_received = intent.amount;
      intent.latest_charge = stripeId('py_');
      record.session.payment_status = 'paid';
      this.emit('checkout.session.async_payment_succeeded', this.copy(record));
    } else {
      // The PaymentIntent goes back to needing a method; the session stays complete/unpaid.
      intent.status = 'requires_payment_method';
      intent.payment_method = null;
      this.emit('checkout.session.async_payment_failed', this.copy(record));
    }
  }

  private markExpired(record: SessionRecord, cause?: EventCause): void {
    record.session.status = 'expired';
    record.session.url = null;
    this.emit('checkout.session.expired', this.copy(record), cause);
  }

  private copy(record: SessionRecord): Stripe.Checkout.Session {
    return structuredClone(record.session);
  }

  private newPaymentIntent(
    session: Stripe.Checkout.Session,
    status: 'succeeded' | 'processing',
    method: string,
  ): Stripe.PaymentIntent {
    const amount = session.amount_total ?? 0;
    return {
      id: stripeId('pi_'),
      object: 'payment_intent',
      allowed_payment_method_types: null,
      amount,
      amount_capturable: 0,
      amount_received: status === 'succeeded' ? amount : 0,
      application: null,
      application_fee_amount: null,
      automatic_payment_methods: null,
      canceled_at: null,
      cancellation_reason: null,
      capture_method: 'automatic_async',
      client_secret: null,
      confirmation_method: 'automatic',
      created: this.clock.nowSeconds(),
      currency: session.currency ?? 'usd',
      customer: null,
      customer_account: null,
      description: null,
      excluded_payment_method_types: null,
      last_payment_error: null,
      latest_charge: status === 'succeeded' ? stripeId('ch_') : null,
      livemode: false,
      managed_payments: null,
      metadata: {},
      next_action: null,
      on_behalf_of: null,
      payment_method: stripeId('pm_'),
      payment_method_configuration_details: null,
      payment_method_options: null,
      payment_method_types: [method],
      payment_record: null,
      processing: null,
      receipt_email: null,
      review: null,
      setup_future_usage: null,
      shipping: null,
      source: null,
      statement_descriptor: null,
      statement_descriptor_suffix: null,
      status,
      transfer_data: null,
      transfer_group: null,
    };
  }
}
