import { type IntentRecord, intentMoney } from '../../core/intent/record.js';
import { isForwardTransition, type PaymentStatus } from '../../core/intent/status.js';
import { PAID_RETENTION_MS } from '../../core/intent/transitions.js';
import type { Logger } from '../../core/logger.js';
import { formatMoney } from '../../core/money/money.js';
import type { ProviderPaymentState } from '../../core/provider.js';
import type { PaymentStore } from '../../store/types.js';
import { mutateIntent } from '../intents.js';
import { recordTransition } from '../telemetry/payment-metrics.js';
import type { Telemetry } from '../telemetry/telemetry.js';

/**
 * The one write path for statuses learned from a provider (status read, verified webhook, return
 * page): forward-only, compare-and-set, and a published StatusChange when the intent's status moves.
 */

/**
 * A run that starts in the write that makes its payment paid. The caller about to run it
 * (confirm_payment) hands one to a fresh check: once the provider says paid, the run lease is
 * taken (`take`), and the claim goes into the same compare-and-set that records `paid` (`apply`),
 * so the run needs no write of its own to start. Busy lease, nothing to claim or a write that did
 * not make the payment paid: the lease goes back (`release`) and the caller runs as it would
 * without one. Made by engine/run-once.ts (`paidClaim`).
 */
export interface PaidClaim {
  /** Take the run lease for `intent` (about to be paid); false when busy or it cannot be claimed. */
  take(intent: IntentRecord): Promise<boolean>;
  /** `next` (paid by this write) with its run claimed, or undefined when it cannot be claimed. */
  apply(next: IntentRecord, now: number): { next: IntentRecord; fence: number } | undefined;
  /** Give back a lease `take` took that no write carried a claim for. */
  release(): Promise<void>;
  /** The stored record and its fencing token, once a write that made the payment paid carried the claim. */
  claimed?: { intent: IntentRecord; fence: number };
}

export interface StatusUpdate {
  intent: IntentRecord;
  /** Whether anything was written. */
  written: boolean;
  /** Whether the intent's own status moved (and a StatusChange was published). */
  statusChanged: boolean;
}

/**
 * Whether the provider reports a payment of another amount or currency than the intent's: such a
 * "paid" does not count. A provider that reports no amount is taken at
 * its word (its payment was created for the intent's amount).
 */
export function paidMismatch(intent: IntentRecord, state: ProviderPaymentState): boolean {
  if (state.status !== 'paid' || state.paid === undefined) return false;
  const expected = intentMoney(intent);
  return (
    state.paid.minor !== expected.minor ||
    state.paid.currency.toUpperCase() !== expected.currency.toUpperCase()
  );
}

/**
 * The record after applying `state` to the attempt `providerId`/`state.paymentId`, or undefined when
 * nothing moves forward. The intent follows its live (last) attempt; an earlier attempt can still
 * make it `paid` (money moved, so the paid call must stay usable) and `refunded` when no other
 * attempt is paid.
 */
export function withProviderState(
  intent: IntentRecord,
  providerId: string,
  state: ProviderPaymentState,
  now: number,
): IntentRecord | undefined {
  if (state.status === 'unknown' || paidMismatch(intent, state)) return undefined;
  const index = intent.attempts.findLastIndex(
    (a) => a.providerId === providerId && a.paymentId === state.paymentId,
  );
  const attempt = intent.attempts[index];
  if (attempt === undefined) return undefined;

  const attemptMoves = isForwardTransition(attempt.status, state.status);
  const isLive = index === intent.attempts.length - 1;
  const otherPaid = intent.attempts.some((a, i) => i !== index && a.status === 'paid');
  // A refund moves the intent only when no other attempt holds a payment (a refunded duplicate
  // leaves the call paid); `paid` from any attempt moves it (money moved); else the live one leads.
  const drivesIntent = state.status === 'refunded' ? !otherPaid : state.status === 'paid' || isLive;
  const intentStatus: PaymentStatus =
    drivesIntent && isForwardTransition(intent.status, state.status) ? state.status : intent.status;

  if (!attemptMoves && intentStatus === intent.status) return undefined;
  const attempts = intent.attempts.map((a, i) =>
    i === index && attemptMoves ? { ...a, status: state.status, rawStatus: state.rawStatus } : a,
  );
  const expiresAt =
    intentStatus === 'paid' && intent.status !== 'paid'
      ? Math.max(intent.expiresAt, now + PAID_RETENTION_MS)
      : intent.expiresAt;
  return { ...intent, attempts, status: intentStatus, updatedAt: now, expiresAt };
}

/**
 * The forward-only write of a provider's state, through the one compare-and-set loop of
 * engine/intents.ts (so the caller's copy, or this process's last one, saves the read); publishes
 * `{intentId, status, version}` when the status moves.
 */
export async function applyProviderStateToStore(
  store: PaymentStore,
  intentId: string,
  providerId: string,
  state: ProviderPaymentState,
  options: {
    now: () => number;
    logger: Logger;
    /** Called after a successful write and before the publish (so the writer recognises its own echo). */
    onWritten?: (record: IntentRecord) => void;
    /** A copy the caller already holds: tried first; compare-and-set catches it if stale. */
    known?: IntentRecord | undefined;
    /** Where the status change is counted: only here, by the writer that made it. */
    telemetry?: Telemetry | undefined;
    /** Announces a payment this write made paid (ledger, `onPaid`), before the change is published. */
    onPaid?: ((intent: IntentRecord) => Promise<void>) | undefined;
    /** A run to claim in the write that makes the payment paid (needs `known`); see PaidClaim. */
    claim?: PaidClaim | undefined;
  },
): Promise<StatusUpdate | undefined> {
  const leased = await takeClaimLease(options.claim, options.known, providerId, state, options.now);
  let claimed = false;
  try {
    const outcome = await mutateIntent<{ mismatch: boolean; before: PaymentStatus; fence?: number }>(
      store,
      intentId,
      (current) => {
        if (paidMismatch(current, state)) return { value: { mismatch: true, before: current.status } };
        const now = options.now();
        const next = withProviderState(current, providerId, state, now);
        // Only the write that makes the payment paid carries the claim.
        const claim =
          leased && next?.status === 'paid' && current.status !== 'paid'
            ? options.claim?.apply(next, now)
            : undefined;
        return claim === undefined
          ? { next, value: { mismatch: false, before: current.status } }
          : { next: claim.next, value: { mismatch: false, before: current.status, fence: claim.fence } };
      },
      options.known,
    );
    if (outcome?.changed === true && outcome.value.fence !== undefined && options.claim !== undefined) {
      options.claim.claimed = { intent: outcome.intent, fence: outcome.value.fence };
      claimed = true;
    }
    return await announce(store, intentId, providerId, state, options, outcome);
  } finally {
    if (leased && !claimed) await options.claim?.release();
  }
}

/**
 * The run lease of a claim, taken once the provider says paid and before the write: only when the
 * caller's copy says this write would make the payment paid.
 */
async function takeClaimLease(
  claim: PaidClaim | undefined,
  known: IntentRecord | undefined,
  providerId: string,
  state: ProviderPaymentState,
  now: () => number,
): Promise<boolean> {
  if (claim === undefined || known === undefined || state.status !== 'paid' || known.status === 'paid')
    return false;
  if (paidMismatch(known, state) || withProviderState(known, providerId, state, now())?.status !== 'paid')
    return false;
  return claim.take(known);
}

/** What follows a write: the mismatch logged, or the paid announcement and the published change. */
async function announce(
  store: PaymentStore,
  intentId: string,
  providerId: string,
  state: ProviderPaymentState,
  options: {
    logger: Logger;
    onWritten?: (record: IntentRecord) => void;
    telemetry?: Telemetry | undefined;
    onPaid?: ((intent: IntentRecord) => Promise<void>) | undefined;
  },
  outcome:
    | { intent: IntentRecord; changed: boolean; value: { mismatch: boolean; before: PaymentStatus } }
    | undefined,
): Promise<StatusUpdate | undefined> {
  if (outcome === undefined) return undefined;
  const { intent, changed, value } = outcome;
  if (value.mismatch) {
    options.logger.error(
      'provider reports a payment of another amount or currency; it does not count as paid',
      {
        intentId,
        providerId,
        paymentId: state.paymentId,
        expected: formatMoney(intentMoney(intent)),
        reported: `${state.paid?.minor} ${state.paid?.currency} (minor units)`,
      },
    );
    return { intent, written: false, statusChanged: false };
  }
  if (!changed) return { intent, written: false, statusChanged: false };
  options.onWritten?.(intent);
  const statusChanged = intent.status !== value.before;
  if (statusChanged) {
    recordTransition(options.telemetry, value.before, intent);
    if (intent.status === 'paid') await options.onPaid?.(intent);
    try {
      await store.publish({ intentId, status: intent.status, version: intent.version });
    } catch (error) {
      // The write stands; other instances still see it on their next read.
      options.logger.warn('publishing a status change failed', { intentId, error });
    }
  }
  return { intent, written: true, statusChanged };
}
