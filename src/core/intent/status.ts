/**
 * The provider-neutral status of a payment, as the user sees it.
 * `authorized`: a machine credential (x402) was verified for this payment; it is settled after a
 * successful run (then `paid`), or `failed` when settlement fails. Not final.
 * `unknown` means the provider could not be asked: never paid, never final.
 */
export const PAYMENT_STATUSES = [
  'requires_method',
  'pending',
  'authorized',
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
  authorized: 3,
  failed: 4,
  canceled: 4,
  expired: 4,
  paid: 5,
  refunded: 6,
};

/** Whether `next` may replace `current`. Equal ranks among final states never replace each other. */
export function isForwardTransition(current: PaymentStatus, next: PaymentStatus): boolean {
  if (next === 'unknown' || next === current) return false;
  if (current === 'refunded') return false;
  if (current === 'paid') return next === 'refunded';
  // A verified credential moves only to its settlement's outcome: settled (paid) or not (failed).
  if (current === 'authorized') return next === 'paid' || next === 'failed';
  if (isFinalStatus(current)) return next === 'paid'; // a late "paid" after a local expiry still wins: money moved
  return RANK[next] > RANK[current];
}
