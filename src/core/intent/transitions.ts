import {
  type Binding,
  type IntentRecord,
  type ProviderAttempt,
  type ToolResult,
  withoutKey,
} from './record.js';
import { isForwardTransition, type PaymentStatus } from './status.js';

/** How long a paid intent stays findable (late webhooks, confirm_payment, stored results). */
export const PAID_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Pure state transitions of an intent. Each returns the next record, or undefined when nothing
 * changes; the repository applies them with compare-and-set, so every one is atomic across
 * instances.
 */

export function sameBinding(a: Binding, b: Binding): boolean {
  return (
    a.tool === b.tool &&
    a.argsHash === b.argsHash &&
    a.amount === b.amount &&
    a.currency === b.currency &&
    a.subject === b.subject
  );
}

export function liveAttempt(intent: IntentRecord): ProviderAttempt | undefined {
  return intent.attempts.at(-1);
}

/** An intent a new identical call should pick up instead of starting a new payment. */
export function isResumable(intent: IntentRecord, now: number): boolean {
  if (intent.expiresAt <= now) return false;
  // A verified credential whose settlement has not succeeded yet: the retry carries it (or a new one).
  if (intent.status === 'authorized') return intent.run !== 'refunding' && intent.run !== 'refunded';
  if (intent.status === 'paid') {
    // A refund decided and not settled (its refunder may have died): the same call finishes it.
    if (intent.run === 'refunding') return true;
    if (intent.run === 'refunded') return false;
    return intent.run !== 'done' || intent.resultDelivered !== true;
  }
  return intent.status === 'requires_method' || intent.status === 'pending' || intent.status === 'unknown';
}

export type ClaimOutcome =
  | { kind: 'claimed'; fence: number }
  | { kind: 'done'; result: ToolResult }
  | { kind: 'busy'; until: number }
  | { kind: 'not_paid'; status: PaymentStatus }
  | { kind: 'refunding' }
  | { kind: 'mismatch' };

/**
 * What a run claim would find, before the store's run lease is taken: a result to hand out, a
 * reason not to run, or nothing (undefined: the caller may take the lease and claim).
 */
export function runBlocker(intent: IntentRecord, binding: Binding): ClaimOutcome | undefined {
  if (!sameBinding(intent.binding, binding)) return { kind: 'mismatch' };
  // A stored result goes out for a paid intent, or an authorized one whose caller settles first;
  // never for one whose payment failed.
  if (intent.run === 'done' && intent.result && intent.status !== 'failed') {
    return { kind: 'done', result: intent.result.result as ToolResult };
  }
  // A refund was chosen (or made) when a run failed: no run may follow it.
  if (intent.run === 'refunding' || intent.run === 'refunded') return { kind: 'refunding' };
  if (intent.status !== 'paid' && intent.status !== 'authorized')
    return { kind: 'not_paid', status: intent.status };
  return undefined;
}

/**
 * Take the right to run the bound tool. The caller holds the store's run lease for this intent
 * (taken on the store's clock), so a `running` record here belongs to a runner whose lease ran
 * out (its instance died): it is taken over with a higher fencing token, and the dead runner's
 * late completion is rejected. A lease written by an older version carries its own `until` on
 * that instance's clock; it is honoured while it lasts, so an upgrade never doubles a live run.
 */
export function claimRun(
  intent: IntentRecord,
  binding: Binding,
  owner: string,
  now: number,
): { next?: IntentRecord; outcome: ClaimOutcome } {
  const blocked = runBlocker(intent, binding);
  if (blocked) return { outcome: blocked };
  const legacyUntil = intent.lease?.until;
  if (intent.run === 'running' && legacyUntil !== undefined && legacyUntil > now) {
    return { outcome: { kind: 'busy', until: legacyUntil } };
  }
  const fence = intent.fence + 1;
  return {
    next: { ...intent, run: 'running', fence, lease: { owner, fence }, updatedAt: now },
    outcome: { kind: 'claimed', fence },
  };
}

/** Store the result of the run holding `fence`, not yet delivered; a stale runner (lease taken over) changes nothing. */
export function completeRun(
  intent: IntentRecord,
  fence: number,
  result: ToolResult,
  now: number,
  retentionMs: number,
  delivered = false,
): IntentRecord | undefined {
  if (intent.run !== 'running' || intent.lease?.fence !== fence) return undefined;
  const next: IntentRecord = withoutKey(intent, 'lease');
  next.run = 'done';
  next.result = { result: result as Record<string, unknown>, completedAt: now };
  // Undelivered until the answer leaves (markDelivered): a crash before that hands it to the retry.
  next.resultDelivered = delivered;
  next.updatedAt = now;
  next.expiresAt = Math.max(intent.expiresAt, now + retentionMs);
  return next;
}

/**
 * The handler threw. With `refund`, the same write that ends the run also decides the refund
 * (`refunding`): from then on no run can be claimed, so no retry can run the tool and be
 * refunded too. Without it the payment stays usable for a retry of the same call.
 */
export function releaseRun(
  intent: IntentRecord,
  fence: number,
  error: string,
  now: number,
  refund = false,
): IntentRecord | undefined {
  if (intent.run !== 'running' || intent.lease?.fence !== fence) return undefined;
  return {
    ...withoutKey(intent, 'lease'),
    run: refund ? 'refunding' : 'unused',
    runErrors: [...intent.runErrors, error].slice(-10),
    updatedAt: now,
  };
}

/**
 * How a chosen refund ended: `refunded` once the provider returned the money; if the provider
 * refused, the payment is kept for a retry of the same call (nothing ran, nothing was returned).
 */
export function settleRefund(intent: IntentRecord, refunded: boolean, now: number): IntentRecord | undefined {
  if (intent.run !== 'refunding') return undefined;
  return { ...intent, run: refunded ? 'refunded' : 'unused', updatedAt: now };
}

export function markDelivered(intent: IntentRecord, now: number): IntentRecord | undefined {
  if (intent.run !== 'done' || intent.resultDelivered === true) return undefined;
  return { ...intent, resultDelivered: true, updatedAt: now };
}

/** Move the intent's status forward (never back); `unknown` is never written. */
export function advanceStatus(
  intent: IntentRecord,
  status: PaymentStatus,
  now: number,
): IntentRecord | undefined {
  if (!isForwardTransition(intent.status, status)) return undefined;
  return { ...intent, status, updatedAt: now };
}

/** Record a provider payment on the intent (the live attempt) and move it to pending. */
export function addAttempt(intent: IntentRecord, attempt: ProviderAttempt, now: number): IntentRecord {
  return {
    ...intent,
    attempts: [...intent.attempts, attempt],
    status: attempt.status === 'paid' ? 'paid' : 'pending',
    updatedAt: now,
    // Late webhooks and confirmations still find the intent an hour after the link expires.
    expiresAt: Math.max(
      intent.expiresAt,
      (attempt.expiresAt ?? now) + 60 * 60 * 1000,
      attempt.status === 'paid' ? now + PAID_RETENTION_MS : 0,
    ),
  };
}

/**
 * A machine credential was verified for this intent: record it as the live attempt and make the
 * intent `authorized` (settled after a successful run). Refused (undefined) when the intent is
 * paid or ended, or already authorized by another credential that has not failed to settle.
 */
export function authorizeIntent(
  intent: IntentRecord,
  attempt: ProviderAttempt,
  now: number,
): IntentRecord | undefined {
  if (intent.attempts.some((a) => a.paymentId === attempt.paymentId && a.providerId === attempt.providerId))
    return undefined;
  if (intent.status === 'authorized') {
    const live = liveAttempt(intent);
    if (live?.status === 'authorized' && live.settlement?.state !== 'failed') return undefined;
  } else if (
    intent.status !== 'requires_method' &&
    intent.status !== 'pending' &&
    intent.status !== 'unknown'
  ) {
    return undefined;
  }
  return {
    ...withoutKey(intent, 'plannedAttempt'),
    attempts: [...intent.attempts, attempt],
    status: 'authorized',
    updatedAt: now,
    expiresAt: Math.max(intent.expiresAt, now + 60 * 60 * 1000),
  };
}

/** The settlement of the credential attempt `paymentId` changes: taken (`settling`), or its outcome. */
export function recordSettlement(
  intent: IntentRecord,
  paymentId: string,
  settlement: NonNullable<ProviderAttempt['settlement']>,
  now: number,
): IntentRecord | undefined {
  const index = intent.attempts.findIndex((a) => a.paymentId === paymentId);
  const attempt = intent.attempts[index];
  if (attempt === undefined) return undefined;
  const previous = attempt.settlement?.state;
  if (settlement.state === 'settling' && previous !== undefined) return undefined;
  if (settlement.state !== 'settling' && previous !== 'settling') return undefined;
  const settled = settlement.state === 'settled';
  const attempts = intent.attempts.slice();
  attempts[index] = {
    ...attempt,
    settlement,
    ...(settlement.state === 'settling' ? {} : { status: settled ? 'paid' : 'failed' }),
    rawStatus: settlement.state,
  };
  return {
    ...intent,
    attempts,
    ...(settled ? { status: 'paid', expiresAt: Math.max(intent.expiresAt, now + PAID_RETENTION_MS) } : {}),
    updatedAt: now,
  };
}
