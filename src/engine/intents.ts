import { LRUCache } from 'lru-cache';
import { PayRouterError } from '../core/errors.js';
import { freezeRecord, type IntentRecord } from '../core/intent/record.js';
import type { InsertOptions, InsertOutcome, PaymentStore } from '../store/types.js';

const MAX_CAS_ATTEMPTS = 100;
/** Records this process wrote or read last, per store: a first guess for the next transition. */
const RECENT_PER_STORE = 1_000;

/**
 * The copy of each intent this process last stored, per store. A transition tries it first
 * instead of reading the store again; compare-and-set catches a stale one (another instance
 * wrote meanwhile), and then the loop reads. Records are frozen, so holding them costs no copy.
 */
const recentByStore = new WeakMap<PaymentStore, LRUCache<string, IntentRecord>>();

function recentOf(store: PaymentStore): LRUCache<string, IntentRecord> {
  let recent = recentByStore.get(store);
  if (recent === undefined) {
    recent = new LRUCache<string, IntentRecord>({ maxSize: RECENT_PER_STORE, sizeCalculation: () => 1 });
    recentByStore.set(store, recent);
  }
  return recent;
}

/** Remember a record as stored (after an insert, update or read), so the next transition can start from it. */
export function rememberIntent(store: PaymentStore, record: IntentRecord): void {
  recentOf(store).set(record.id, record);
}

/** Insert a new intent (see PaymentStore.insert) and keep the inserted copy for the next transition. */
export async function insertIntent(
  store: PaymentStore,
  record: IntentRecord,
  options?: InsertOptions,
): Promise<InsertOutcome> {
  const outcome = await store.insert(record, options);
  // Frozen like every stored copy, so its binding key is computed once and reused.
  // Object.assign, not a spread: the copy keeps the record's hidden class (as memoryStore's does).
  if (outcome.kind === 'inserted')
    rememberIntent(store, freezeRecord(Object.assign({}, record, { version: 1 })));
  return outcome;
}

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
  const recent = recentOf(store);
  for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
    const held =
      attempt === 0 ? newer(known?.id === intentId ? known : undefined, recent.get(intentId)) : undefined;
    const guessed = held !== undefined;
    const current = held ?? (await store.get(intentId));
    if (current === undefined) {
      recent.delete(intentId);
      return undefined;
    }
    const { next, value } = transition(current);
    // "Nothing to do" is only believed from a fresh read: the held copy may be behind.
    if (next === undefined && guessed) continue;
    if (next === undefined) {
      recent.set(intentId, current);
      return { intent: current, changed: false, value };
    }
    const stored = await store.update(next, current.version);
    if (stored !== undefined) {
      recent.set(intentId, stored);
      return { intent: stored, changed: true, value };
    }
    // Lost the race: someone else wrote first. Re-read and decide again.
  }
  throw new PayRouterError('store_contention', `Could not update payment ${intentId}: too much contention`);
}

/** The later of two copies of one intent (by version), either of which may be missing. */
function newer(a: IntentRecord | undefined, b: IntentRecord | undefined): IntentRecord | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return b.version > a.version ? b : a;
}

/** mutateIntent for transitions that return just the next record. */
export async function updateIntent(
  store: PaymentStore,
  intentId: string,
  transition: (current: IntentRecord) => IntentRecord | undefined,
  known?: IntentRecord,
): Promise<IntentRecord | undefined> {
  const outcome = await mutateIntent(
    store,
    intentId,
    (current) => ({ next: transition(current), value: undefined }),
    known,
  );
  return outcome?.intent;
}
