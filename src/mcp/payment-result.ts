import type { IntentRecord } from '../core/intent/record.js';
import { intentMoney } from '../core/intent/record.js';
import type { PaymentStatus } from '../core/intent/status.js';
import { formatMoney, toDecimalString } from '../core/money/money.js';

/**
 * A tool result as payrouter builds it: plain JSON of the shape both SDK lines' `CallToolResult`
 * accept (text content, `isError`, `_meta`, `structuredContent`), so each protocol layer hands it
 * on as its own type.
 */
export interface ResultJson {
  content: Array<{ type: 'text'; text: string }>;
  isError?: boolean;
  _meta?: Record<string, unknown>;
  structuredContent?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The `_meta` key (and `structuredContent.payment`) carrying the machine-readable payment. */
export const PAYMENT_META_KEY = 'payrouter/payment';

export interface PaymentAlternative {
  provider: string;
  label: string;
  /** "instant" or "opens a checkout page". */
  speed: string;
}

/** The machine-readable payment object of a payment-required result (`_meta[PAYMENT_META_KEY]`). */
export interface PaymentInfo {
  payment_id: string;
  status: PaymentStatus;
  /** Exact decimal string, e.g. "0.25". */
  amount: string;
  currency: string;
  /** Human form, e.g. "$0.25". */
  amount_display: string;
  tool: string;
  provider: string | null;
  /**
   * The provider's own id of this payment, for support and for tests that drive a stand-in:
   * Stripe's Checkout Session id (`cs_…`), Walleot's session id, x402's credential id. No secret
   * (Stripe's `client_secret` is never kept). Null before a provider payment exists.
   */
  provider_payment_id: string | null;
  provider_label: string | null;
  payment_url: string | null;
  /** ISO 8601. */
  expires_at: string | null;
  alternatives: PaymentAlternative[];
  /** What the user or the model should do next, in one sentence. */
  next: string;
}

export function buildPaymentInfo(
  intent: IntentRecord,
  details: {
    status?: PaymentStatus;
    providerLabel?: string | undefined;
    url?: string | undefined;
    alternatives: PaymentAlternative[];
    next: string;
  },
): PaymentInfo {
  const attempt = intent.attempts.at(-1);
  const money = intentMoney(intent);
  const expiresAt = attempt?.expiresAt ?? intent.plannedAttempt?.expiresAt;
  return {
    payment_id: intent.id,
    status: details.status ?? intent.status,
    amount: toDecimalString(money),
    currency: money.currency,
    amount_display: formatMoney(money),
    tool: intent.binding.tool,
    provider: attempt?.providerId ?? null,
    provider_payment_id: attempt?.paymentId ?? null,
    provider_label: details.providerLabel ?? null,
    payment_url: details.url ?? null,
    expires_at: expiresAt === undefined ? null : new Date(expiresAt).toISOString(),
    alternatives: details.alternatives,
    next: details.next,
  };
}

/**
 * A result that tells the user what happened with the payment (pending, declined, failed...).
 * `isError: true` so models do not treat it as the tool's output. `structuredContent` is set
 * only for tools without an `outputSchema`: the SDK client validates it even on error results.
 */
export function paymentResult(
  text: string,
  info: PaymentInfo | undefined,
  hasOutputSchema: boolean,
): ResultJson {
  const result: ResultJson = { isError: true, content: [{ type: 'text', text }] };
  if (info !== undefined) {
    result._meta = { [PAYMENT_META_KEY]: info };
    if (!hasOutputSchema) result.structuredContent = { payment: info };
  }
  return result;
}
