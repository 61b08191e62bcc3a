import type { Binding, IntentRecord, ProviderAttempt, ToolResult } from './record.js';
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
  if (intent.status === 'paid') return intent.run !== 'done' || intent.resultDelivered !== true;
  return intent.status === 'requires_method' || intent.status === 'pending' || intent.status === 'unknown';
}

export type ClaimOutcome =
  | { kind: 'claimed'; fence: number }
  | { kind: 'done'; result: ToolResult }
  | { kind: 'busy'; until: number }
  | { kind: 'not_paid'; status: PaymentStatus }
  | { kind: 'mismatch' };

/**
 * Take the right to run the bound tool: only a paid intent whose binding matches, not already
 * done, and not leased to a live runner. A lease that ran out (its instance died) is taken over
 * with a higher fencing token, so the dead runner's late completion is rejected.
 */
export function claimRun(
  intent: IntentRecord,
  binding: Binding,
  owner: string,
  now: number,
  leaseMs: number,
): { next?: IntentRecord; outcome: ClaimOutcome } {
  if (!sameBinding(intent.binding, binding)) return { outcome: { kind: 'mismatch' } };
  if (intent.run === 'done' && intent.result) {
    return { outcome: { kind: 'done', result: intent.result.result as ToolResult } };
  }
  if (intent.status !== 'paid') return { outcome: { kind: 'not_paid', status: intent.status } };
  if (intent.run === 'running' && intent.lease && intent.lease.until > now) {
    return { outcome: { kind: 'busy', until: intent.lease.until } };
  }
  const fence = intent.fence + 1;
  return {
    next: { ...intent, run: 'running', fence, lease: { owner, until: now + leaseMs, fence }, updatedAt: now },
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
  const { lease: _lease, ...rest } = intent;
  return {
    ...rest,
    run: 'done',
    result: { result: result as Record<string, unknown>, completedAt: now },
    // Undelivered until the answer leaves (markDelivered): a crash before that hands it to the retry.
    resultDelivered: delivered,
    updatedAt: now,
    expiresAt: Math.max(intent.expiresAt, now + retentionMs),
  };
}

/** The run holding `fence` is still working: push its lease out, so no other instance takes over. */
export function renewLease(
  intent: IntentRecord,
  fence: number,
  now: number,
  leaseMs: number,
): IntentRecord | undefined {
  if (intent.run !== 'running' || intent.lease?.fence !== fence) return undefined;
  return { ...intent, lease: { ...intent.lease, until: now + leaseMs }, updatedAt: now };
}

/** The handler threw: the payment stays usable for a retry of the same call. */
export function releaseRun(
  intent: IntentRecord,
  fence: number,
  error: string,
  now: number,
): IntentRecord | undefined {
  if (intent.run !== 'running' || intent.lease?.fence !== fence) return undefined;
  const { lease: _lease, ...rest } = intent;
  return { ...rest, run: 'unused', runErrors: [...intent.runErrors, error].slice(-10), updatedAt: now };
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
