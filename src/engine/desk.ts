import { ProviderError, WebhookError } from '../core/errors.js';
import { looksLikeIntentId } from '../core/ids.js';
import { type IntentRecord, intentMoney, type ProviderAttempt } from '../core/intent/record.js';
import { isFinalStatus, type PaymentStatus } from '../core/intent/status.js';
import { liveAttempt } from '../core/intent/transitions.js';
import type { Logger } from '../core/logger.js';
import { formatMoney, type Money } from '../core/money/money.js';
import type { HeaderBag, PaymentProvider, ProviderWebhookEvent } from '../core/provider.js';
import { feeFor } from '../core/route/fees.js';
import { selectMethod } from './attempts.js';
import type { RouterCore } from './runtime.js';

/**
 * The payment desk: the narrow interface the HTTP layer (hosted pay page, return page, webhooks)
 * works through. It knows neither HTTP nor MCP; pages get views that hold what a
 * payer may see (no subject, no arguments, no secrets), and every write goes through the engine.
 */
export interface PaymentDesk {
  /** The public base URL the pages and webhooks are served under. */
  readonly publicUrl: string;
  /** Who the payer is paying: the `name` option, else the host of `publicUrl`. */
  readonly serverName: string;
  /** Whether any configured provider is a sandbox or in test mode (no real money moves). */
  readonly testMode: boolean;
  readonly logger: Logger;
  /** The hosted pay page of a payment; with `method`, the link that goes straight to that method's checkout. */
  payPageUrl(intentId: string, method?: string): string;
  /** The payment as stored, without asking the provider. Undefined for an unknown or malformed id. */
  getIntent(intentId: string): Promise<DeskPayment | undefined>;
  /**
   * The payment with its status confirmed through the confirmation layer: a cached, rate-budgeted
   * read by default; `fresh` asks the provider now (someone just came back from the checkout).
   */
  check(intentId: string, options?: { fresh?: boolean; opened?: boolean }): Promise<DeskPayment | undefined>;
  /** Pay with `providerId`: creates that provider's payment once (switching from another one). */
  selectMethod(intentId: string, providerId: string): Promise<MethodSelection>;
  /** Whether `providerId` is configured and verifies webhooks. */
  acceptsWebhooks(providerId: string): boolean;
  /** Verify a webhook on its exact bytes, apply it forward-only and deduplicate it by event id. */
  applyWebhook(providerId: string, rawBody: Uint8Array, headers: HeaderBag): Promise<WebhookOutcome>;
}

/** A way to pay, as a payer sees it. */
export interface DeskMethod {
  providerId: string;
  /** "Walleot balance", "Card (Stripe Checkout)". */
  label: string;
  /** Kind and speed, e.g. "instant, from prepaid credits"; the fee only when the payer pays it. */
  detail: string;
}

/** One provider payment of a payment, as a payer sees it. */
export interface DeskAttempt {
  providerId: string;
  label: string;
  status: PaymentStatus;
  /** The provider's own reference (a Stripe Checkout Session id, a Walleot session id). */
  reference: string;
  /** The provider checkout to send the browser to; only http(s) links are kept. */
  checkoutUrl: string | undefined;
}

/** A payment as the hosted pages show it. */
export interface DeskPayment {
  /** The payment_id the chat knows; the reference to keep. */
  id: string;
  /** The effective status: `unknown` when the provider could not be reached and nothing is final. */
  status: PaymentStatus;
  /** "$25.00". */
  amountDisplay: string;
  /** What is paid for: the tool's title (else its description), never just the raw name when there is one. */
  title: string;
  /** Whether the paid tool has run (its result is ready in the chat). */
  ran: boolean;
  /** The methods this payment can still be paid with, in routing order. */
  methods: readonly DeskMethod[];
  /** The provider payment currently offered (the last one made), if any. */
  live: DeskAttempt | undefined;
  /** The provider payment that took the money, if one did. */
  paidWith: DeskAttempt | undefined;
  /** Whether a sandbox or test-mode provider is involved: no real money moves. */
  testMode: boolean;
}

export type MethodSelection =
  | { kind: 'not_found' }
  /** Not eligible for this payment, or not configured on this instance. */
  | { kind: 'not_available' }
  /** Paid or ended: nothing is selected, the page shows where it stands. */
  | { kind: 'closed'; payment: DeskPayment }
  | { kind: 'selected'; payment: DeskPayment; checkoutUrl: string | undefined }
  /** The provider could not start the payment; nothing was charged. */
  | { kind: 'failed'; message: string };

export type WebhookOutcome =
  | { kind: 'no_endpoint' }
  /** Forged, stale or malformed: nothing changed. */
  | { kind: 'rejected'; reason: string }
  /** Verified, but not about a payment. */
  | { kind: 'ignored' }
  /** Verified, for a payment this router does not know. */
  | { kind: 'unknown_payment' }
  | { kind: 'applied'; duplicate: boolean }
  /** The store could not record it: the provider should retry. */
  | { kind: 'failed' };

/** Longer than any provider's retry window (Stripe retries live events for 3 days). */
const EVENT_DEDUP_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/** Whether a provider moves no real money (sandbox or test keys), as it declares. */
export function isTestMode(provider: PaymentProvider): boolean {
  return provider.capabilities.testMode === true;
}

/** The hosted pay page of an intent; `method` asks it to go straight to that method's live checkout. */
export function payPageUrl(publicUrl: string, intentId: string, method?: string): string {
  const page = `${publicUrl}/pay/${intentId}`;
  return method === undefined ? page : `${page}?method=${encodeURIComponent(method)}`;
}

/**
 * How a method is described to a payer: by kind and speed, and with its fee only when the payer
 * pays it. By default the merchant absorbs the fee and the payer pays exactly the price.
 */
export function describeMethod(
  provider: PaymentProvider,
  money: Money,
  feesPaidBy: 'merchant' | 'payer',
): DeskMethod {
  const caps = provider.capabilities;
  const kind = caps.instant ? 'instant, from prepaid credits' : 'on a secure checkout page';
  if (feesPaidBy === 'merchant') return { providerId: provider.id, label: caps.label, detail: kind };
  const minor = feeFor(caps.fee, money);
  const fee = minor === 0 ? 'no fee' : `${formatMoney({ minor, currency: money.currency })} fee`;
  return { providerId: provider.id, label: caps.label, detail: `${kind}, ${fee}` };
}

function isWebUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

export function createPaymentDesk(core: RouterCore): PaymentDesk {
  const publicUrl = core.settings.publicUrl ?? '';
  const serverName = core.settings.serverName ?? (publicUrl === '' ? 'payrouter' : new URL(publicUrl).host);
  const anyTestMode = core.providers.some(isTestMode);

  const attemptView = (attempt: ProviderAttempt): DeskAttempt => ({
    providerId: attempt.providerId,
    label: core.providerById.get(attempt.providerId)?.capabilities.label ?? attempt.providerId,
    status: attempt.status,
    reference: attempt.paymentId,
    checkoutUrl: isWebUrl(attempt.url) ? attempt.url : undefined,
  });

  const view = (intent: IntentRecord, status: PaymentStatus = intent.status): DeskPayment => {
    const money = intentMoney(intent);
    // A machine offer (x402) is paid by an agent in its MCP call, never from a page a person opens.
    const methods = intent.eligible.flatMap((id) => {
      const provider = core.providerById.get(id);
      return provider === undefined || provider.capabilities.credential !== undefined
        ? []
        : [describeMethod(provider, money, core.settings.feesPaidBy)];
    });
    const live = liveAttempt(intent);
    const paid = intent.attempts.findLast((a) => a.status === 'paid' || a.status === 'refunded');
    const involved = [...intent.eligible, ...intent.attempts.map((a) => a.providerId)];
    return {
      id: intent.id,
      status,
      amountDisplay: formatMoney(money),
      title: intent.description,
      ran: intent.run === 'done',
      methods,
      live: live === undefined ? undefined : attemptView(live),
      paidWith: paid === undefined ? undefined : attemptView(paid),
      testMode: involved.some((id) => {
        const provider = core.providerById.get(id);
        return provider !== undefined && isTestMode(provider);
      }),
    };
  };

  const stored = async (intentId: string): Promise<IntentRecord | undefined> =>
    looksLikeIntentId(intentId) ? core.store.get(intentId) : undefined;

  /** The intent named in the event's metadata if it owns the payment, else the owner by payment id. */
  const intentOfEvent = async (providerId: string, event: ProviderWebhookEvent) => {
    if (event.intentId !== undefined && looksLikeIntentId(event.intentId)) {
      const named = await core.store.get(event.intentId);
      const owns = named?.attempts.some(
        (a) => a.providerId === providerId && a.paymentId === event.paymentId,
      );
      if (named !== undefined && owns === true) return named;
    }
    return core.store.findByPayment(providerId, event.paymentId);
  };

  return {
    publicUrl,
    serverName,
    testMode: anyTestMode,
    logger: core.logger,
    payPageUrl: (intentId, method) => payPageUrl(publicUrl, intentId, method),

    async getIntent(intentId) {
      const intent = await stored(intentId);
      return intent === undefined ? undefined : view(intent);
    },

    async check(intentId, options = {}) {
      if (!looksLikeIntentId(intentId)) return undefined;
      // The payer has the payment in front of them (a pay page opened): its polls go first.
      if (options.opened === true) core.confirmation.noteActivity(intentId);
      if (options.fresh !== true) {
        // Nothing to ask a provider about: the stored status is the answer.
        const intent = await core.store.get(intentId);
        if (intent === undefined) return undefined;
        if (isFinalStatus(intent.status) || liveAttempt(intent) === undefined) return view(intent);
      }
      const confirmation = await core.confirmation.check(intentId, { fresh: options.fresh === true });
      return confirmation === undefined ? undefined : view(confirmation.intent, confirmation.status);
    },

    async selectMethod(intentId, providerId) {
      const intent = await stored(intentId);
      if (intent === undefined) return { kind: 'not_found' };
      const provider = core.providerById.get(providerId);
      if (
        !intent.eligible.includes(providerId) ||
        provider === undefined ||
        provider.capabilities.credential !== undefined
      )
        return { kind: 'not_available' };
      if (isFinalStatus(intent.status)) return { kind: 'closed', payment: view(intent) };
      let selected: IntentRecord;
      try {
        selected = await selectMethod(core, intent, providerId);
      } catch (error) {
        if (!(error instanceof ProviderError)) throw error;
        core.logger.warn('pay page: starting the payment failed', { intentId, providerId, error });
        return { kind: 'failed', message: error.userMessage };
      }
      const payment = view(selected);
      if (isFinalStatus(selected.status)) return { kind: 'closed', payment };
      const live = payment.live;
      return {
        kind: 'selected',
        payment,
        checkoutUrl: live?.providerId === providerId ? live.checkoutUrl : undefined,
      };
    },

    acceptsWebhooks(providerId) {
      return core.providerById.get(providerId)?.parseWebhook !== undefined;
    },

    async applyWebhook(providerId, rawBody, headers) {
      const provider = core.providerById.get(providerId);
      if (provider?.parseWebhook === undefined) return { kind: 'no_endpoint' };
      let event: ProviderWebhookEvent | null;
      try {
        event = await provider.parseWebhook(rawBody, headers);
      } catch (error) {
        if (error instanceof WebhookError) {
          core.logger.warn('webhook rejected', { providerId, reason: error.message });
          return { kind: 'rejected', reason: error.message };
        }
        throw error;
      }
      if (event === null) return { kind: 'ignored' };

      const intent = await intentOfEvent(providerId, event);
      if (intent === undefined) {
        core.logger.warn('webhook for a payment this router does not know', {
          providerId,
          eventId: event.eventId,
          type: event.type,
          paymentId: event.paymentId,
        });
        return { kind: 'unknown_payment' };
      }
      try {
        await core.confirmation.applyProviderState(intent.id, providerId, {
          paymentId: event.paymentId,
          status: event.status,
          rawStatus: event.rawStatus,
          ...(event.paid === undefined ? {} : { paid: event.paid }),
        });
      } catch (error) {
        core.logger.error('applying a webhook failed; the provider will retry', {
          providerId,
          eventId: event.eventId,
          intentId: intent.id,
          error,
        });
        return { kind: 'failed' };
      }
      // Marked after the apply: a failed apply must stay retryable. A repeat applies the same state
      // again, which forward-only application makes a no-op.
      const first = await core.store.markEvent(`${providerId}:${event.eventId}`, EVENT_DEDUP_TTL_MS);
      if (!first) {
        core.logger.debug('duplicate webhook', { providerId, eventId: event.eventId, intentId: intent.id });
        return { kind: 'applied', duplicate: true };
      }
      core.logger.info('webhook applied', {
        providerId,
        eventId: event.eventId,
        type: event.type,
        intentId: intent.id,
        status: event.status,
      });
      return { kind: 'applied', duplicate: false };
    },
  };
}
