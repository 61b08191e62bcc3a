/**
 * The provider-neutral status of a payment, as the user sees it.
 * `unknown` means the provider could not be asked: never paid, never final.
 */
export const PAYMENT_STATUSES = [
  'requires_method',
  'pending',
  'paid',
  'failed',
  'canceled',
  'expired',
  'refunded',
  'unknown',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** Statuses after which a payment can never become paid. `paid` is final for money, not for the run. */
export const FINAL_STATUSES: ReadonlySet<PaymentStatus> = new Set([
  'paid',
  'failed',
  'canceled',
  'expired',
  'refunded',
]);

export function isFinalStatus(status: PaymentStatus): boolean {
  return FINAL_STATUSES.has(status);
}

/**
 * Rank used to move statuses only forward: a webhook or poll carrying an older state (a stale
 * `pending` after `paid`, an `expired` replayed after `paid`) never overwrites a newer one.
 * `unknown` ranks lowest: it is an absence of news, never a transition.
 */
const RANK: Record<PaymentStatus, number> = {
  unknown: 0,
  requires_method: 1,
  pending: 2,
  failed: 3,
  canceled: 3,
  expired: 3,
  paid: 4,
  refunded: 5,
};

/** Whether `next` may replace `current`. Equal ranks among final states never replace each other. */
export function isForwardTransition(current: PaymentStatus, next: PaymentStatus): boolean {
  if (next === 'unknown' || next === current) return false;
  if (current === 'refunded') return false;
  if (current === 'paid') return next === 'refunded';
  if (isFinalStatus(current)) return next === 'paid'; // a late "paid" after a local expiry still wins: money moved
  return RANK[next] > RANK[current];
}
