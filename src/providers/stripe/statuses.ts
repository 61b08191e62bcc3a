import { z } from 'zod';
import type { PaymentStatus } from '../../core/intent/status.js';
import type { Money } from '../../core/money/money.js';
import { fromStripeAmount } from './currencies.js';

/**
 * What StripeProvider reads from a Checkout Session, validated (the SDK's types describe what
 * Stripe should send, not what arrived), and how its statuses map to ours: both
 * `status` and `payment_status` are read, and the expanded PaymentIntent tells an async failure.
 */

export const sessionSchema = z.object({
  id: z.string().min(1),
  object: z.literal('checkout.session'),
  status: z.string().nullable(),
  payment_status: z.string().nullable(),
  url: z.string().nullable().optional(),
  expires_at: z.number().int().nullable().optional(),
  payment_intent: z
    .union([z.string(), z.object({ id: z.string(), status: z.string() }), z.null()])
    .optional(),
  metadata: z.record(z.string(), z.string()).nullable().optional(),
  client_reference_id: z.string().nullable().optional(),
  /** What the session charges, in Stripe's unit of `currency` (lowercase). */
  amount_total: z.number().int().nullable().optional(),
  currency: z.string().nullable().optional(),
});
export type SessionView = z.infer<typeof sessionSchema>;

export interface MappedStatus {
  status: PaymentStatus;
  rawStatus: string;
  /** False for a status combination Stripe does not document (logged by the caller). */
  known: boolean;
}

/** PaymentIntent statuses that mean the async payment of a complete/unpaid session failed. */
const FAILED_INTENT = new Set(['requires_payment_method', 'canceled']);

export function mapSessionStatus(session: SessionView): MappedStatus {
  const { status, payment_status: paymentStatus } = session;
  const raw = `${status ?? 'null'}/${paymentStatus ?? 'null'}`;
  if (status === 'open' && paymentStatus === 'unpaid')
    return { status: 'pending', rawStatus: raw, known: true };
  if (status === 'complete' && paymentStatus === 'paid')
    return { status: 'paid', rawStatus: raw, known: true };
  if (status === 'expired' && paymentStatus === 'unpaid') {
    return { status: 'expired', rawStatus: raw, known: true };
  }
  if (status === 'complete' && paymentStatus === 'unpaid') {
    // An async method (bank debit) awaiting its outcome, unless the expanded PaymentIntent says it failed.
    const intent = session.payment_intent;
    const intentStatus = typeof intent === 'object' && intent !== null ? intent.status : undefined;
    if (intentStatus !== undefined && FAILED_INTENT.has(intentStatus)) {
      return { status: 'failed', rawStatus: `${raw}/${intentStatus}`, known: true };
    }
    return {
      status: 'pending',
      rawStatus: intentStatus === undefined ? raw : `${raw}/${intentStatus}`,
      known: true,
    };
  }
  // complete/no_payment_required never unlocks a priced call; anything else is unexpected.
  return { status: 'unknown', rawStatus: raw, known: false };
}

/** The payrouter intent id the session was created for. */
export function intentIdOf(session: SessionView): string | undefined {
  return session.metadata?.['payrouter_intent'] ?? session.client_reference_id ?? undefined;
}

/** The PaymentIntent id of a paid (or async-paying) session, expanded or not. */
export function paymentIntentIdOf(session: SessionView): string | undefined {
  const intent = session.payment_intent;
  if (typeof intent === 'string') return intent;
  return intent?.id;
}

/** What the session charges (`amount_total`, `currency`) in payrouter minor units, when readable. */
export function paidAmountOf(session: SessionView): Money | undefined {
  const { amount_total: amount, currency } = session;
  if (typeof amount !== 'number' || typeof currency !== 'string') return undefined;
  return fromStripeAmount(amount, currency);
}
