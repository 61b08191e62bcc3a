import { PayRouterError } from '../core/errors.js';
import type { IntentRecord } from '../core/intent/record.js';
import type { PaymentStore } from '../store/types.js';

const MAX_CAS_ATTEMPTS = 100;

/**
 * Apply a pure transition with compare-and-set, re-reading on conflict. Returns the record as
 * stored afterwards, whether the transition changed it, and the transition's own verdict.
 */
export async function mutateIntent<T>(
  store: PaymentStore,
  intentId: string,
  transition: (current: IntentRecord) => { next?: IntentRecord | undefined; value: T },
  /** A copy the caller already holds: tried first, saving a read; compare-and-set catches it if stale. */
  known?: IntentRecord,
): Promise<{ intent: IntentRecord; changed: boolean; value: T } | undefined> {
  for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
    const guessed = attempt === 0 && known?.id === intentId;
    const current = guessed ? known : await store.get(intentId);
    if (current === undefined) return undefined;
    const { next, value } = transition(current);
    // "Nothing to do" is only believed from a fresh read: the held copy may be behind.
    if (next === undefined && guessed) continue;
    if (next === undefined) return { intent: current, changed: false, value };
    const stored = await store.update(next, current.version);
    if (stored !== undefined) return { intent: stored, changed: true, value };
    // Lost the race: someone else wrote first. Re-read and decide again.
  }
  throw new PayRouterError('store_contention', `Could not update payment ${intentId}: too much contention`);
}

/** mutateIntent for transitions that return just the next record. */
export async function updateIntent(
  store: PaymentStore,
  intentId: string,
  transition: (current: IntentRecord) => IntentRecord | undefined,
): Promise<IntentRecord | undefined> {
  const outcome = await mutateIntent(store, intentId, (current) => ({
    next: transition(current),
    value: undefined,
  }));
  return outcome?.intent;
}
