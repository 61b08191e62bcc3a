import type { IntentRecord } from '../core/intent/record.js';
import type { PaymentStatus } from '../core/intent/status.js';

export type {
  Binding,
  IntentRecord,
  PlannedAttempt,
  ProviderAttempt,
  RunLease,
  RunState,
  StoredResult,
} from '../core/intent/record.js';

export interface StatusChange {
  intentId: string;
  status: PaymentStatus;
  version: number;
}

/** How many unpaid intents one subject may have open at once, and how many argument bytes they may hold. */
export interface OpenLimits {
  /** Open (unpaid, unexpired) intents per subject. */
  openPerSubject: number;
  /** Canonical argument JSON bytes over a subject's open intents. */
  openArgumentBytesPerSubject: number;
}

export interface InsertOptions {
  /** The intent id the binding key must still point at (`null` for none) for the insert to happen. */
  bindingOwner?: string | null;
  /**
   * Refuse the insert of an open intent when its subject (or the subject's pool, `subjectPool`)
   * would go over these, counted atomically with the insert (across instances for a shared
   * store). Intents that were paid, canceled, failed or expired no longer count.
   */
  limits?: OpenLimits;
  /**
   * How long the new intent counts as open at most (its payment link's life), if less than until
   * it expires. Default: until it expires.
   */
  openMs?: number;
}

/**
 * What an insert did. `taken`: the id exists, or the binding moved on (another caller opened
 * first). `limit`: the subject has `open` open intents (holding `bytes` argument bytes) and this
 * one would pass `limit` of the kind named. `full`: a bounded store has no room that it may free
 * (it never evicts a paid or open intent to make some).
 */
export type InsertOutcome =
  | { kind: 'inserted' }
  | { kind: 'taken' }
  | { kind: 'limit'; what: 'open' | 'bytes'; open: number; bytes: number; limit: number }
  | { kind: 'full' };

/** A run lease: taken for `leaseMs` on the store's clock, so instance clocks do not matter. */
export type LeaseOutcome = { kind: 'acquired' } | { kind: 'busy'; remainingMs: number };

/**
 * Persistence for intents. Every mutation is atomic across all instances sharing the store.
 * Higher-level transitions (claim, complete, status updates) are compare-and-set loops over `update`.
 * Records come out frozen: a caller cannot change stored state except through `update`.
 */
export interface PaymentStore {
  get(intentId: string): Promise<IntentRecord | undefined>;
  /**
   * Insert a new record (version 1) and make it the binding key's intent. `taken` when the id
   * exists, or when `options.bindingOwner` is given and the binding key no longer points at that
   * intent (`null`: at no live intent): another caller, on any instance, opened one first.
   */
  insert(record: IntentRecord, options?: InsertOptions): Promise<InsertOutcome>;
  /**
   * Replace the record if its stored version equals `expectedVersion`; the stored copy gets
   * `expectedVersion + 1`. Returns the stored record, or undefined on a version conflict / missing record.
   * Keeps the binding index, the provider-payment index and the subject's open count current.
   */
  update(record: IntentRecord, expectedVersion: number): Promise<IntentRecord | undefined>;
  /** The newest intent indexed under this binding key, if it has not expired. */
  findByBinding(key: string): Promise<IntentRecord | undefined>;
  /** The intent that owns a provider payment (from any attempt). */
  findByPayment(providerId: string, paymentId: string): Promise<IntentRecord | undefined>;
  /**
   * Take the run lease of an intent for `leaseMs`, timed on the store's clock: refused while
   * another owner's lease lasts. The same owner taking it again renews it.
   */
  acquireLease(intentId: string, owner: string, leaseMs: number): Promise<LeaseOutcome>;
  /** Push the lease out to `leaseMs` from now (store's clock) if `owner` still holds it; false if not. */
  renewLease(intentId: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Give the lease back if `owner` holds it, so the next claim need not wait for it to run out. */
  releaseLease(intentId: string, owner: string): Promise<void>;
  /** Remembered payment method of a subject. */
  getChoice(subject: string): Promise<string | undefined>;
  setChoice(subject: string, providerId: string, ttlMs: number): Promise<void>;
  /** Record a processed event id (webhook dedup). Returns true the first time, false on a repeat. */
  markEvent(eventId: string, ttlMs: number): Promise<boolean>;
  /** Tell every instance that an intent's status changed. */
  publish(change: StatusChange): Promise<void>;
  /** Listen to status changes from every instance. Returns an unsubscribe function. */
  subscribe(listener: (change: StatusChange) => void): () => void;
  close(): Promise<void>;
  /**
   * Refunds decided and maybe not made yet (their refunder may die before making them), so any
   * instance can find and make them. Noted before the write that decides a refund, dropped once it
   * is settled; an id whose intent is not `refunding` is simply dropped by the sweep. Optional:
   * without these a stuck refund is made only when its payment is touched again.
   */
  noteRefund?(intentId: string): Promise<void>;
  /** Up to `limit` noted refunds, oldest first. */
  refundsToSettle?(limit: number): Promise<string[]>;
  dropRefund?(intentId: string): Promise<void>;
}

/**
 * One counter a usage reservation adds to: a spend cap (minor units), a call quota or a free
 * allowance (calls). `fixed`: a calendar period from `start` to `end` (ms since epoch); `rolling`:
 * the last `ms` milliseconds before the reservation's time.
 */
export interface UsageCounter {
  /** Names the counter within its scope, e.g. `spend:USD:day` or `free:tool:report:month`. */
  key: string;
  /** Integer to add: minor units for spend, 1 for a call. */
  add: number;
  /** The counter may reach `limit`, never pass it. */
  limit: number;
  window: { kind: 'fixed'; start: number; end: number } | { kind: 'rolling'; ms: number };
}

/**
 * Add to every counter of one scope atomically, or to none. `scope` is a subject (its hash slot
 * in Redis) or `*` for router-wide caps. `id` names the reservation (an intent id), so it can be
 * given back once (`releaseUsage`); reserving an id that is already held changes nothing.
 */
export interface UsageReservation {
  scope: string;
  id: string;
  /** The reservation's time (ms since epoch, the router's clock): rolling windows end here. */
  at: number;
  counters: readonly UsageCounter[];
}

/** `over`: `key` has `used` of `limit` and this reservation would pass it; budget frees at `resetsAt`. */
export type UsageOutcome =
  | { kind: 'reserved' }
  | { kind: 'over'; key: string; used: number; limit: number; resetsAt: number };

/** One line of the ledger. Amounts are integer minor units; arguments and secrets never appear. */
export interface LedgerEntry {
  /**
   * Unique and deterministic (`<intent>:<kind>[:n]`). The engine writes each entry once, from the
   * instance whose compare-and-set made the event happen.
   */
  id: string;
  at: number;
  subject: string;
  kind: 'payment' | 'paid' | 'free' | 'run' | 'refund' | 'cancel';
  intentId: string;
  tool: string;
  amount: number;
  currency: string;
  provider?: string;
  /** The provider's payment id (payment, paid, refund). */
  providerPaymentId?: string;
  /** The receipt reference the payer was given. */
  receipt?: string;
  /** run: whether the tool succeeded. */
  ok?: boolean;
  /** refund, cancel: the operator's reason (never arguments). */
  reason?: string;
}

/**
 * What limits and the ledger need of a store; memoryStore and redisStore implement it, and a
 * router with spend caps, quotas or free allowances refuses a store without it.
 */
export interface UsageStore {
  reserveUsage(reservation: UsageReservation): Promise<UsageOutcome>;
  /** Give a reservation back (refund, cancel, unpaid end); true the first time, false after. */
  releaseUsage(scope: string, id: string): Promise<boolean>;
  /** Append an entry kept `retentionMs` (at least); false when this store knows its id already. */
  appendLedger(entry: LedgerEntry, retentionMs: number): Promise<boolean>;
  /** A subject's entries at or after `since`, oldest first, at most `limit`. */
  listLedger(subject: string, since: number, limit: number): Promise<LedgerEntry[]>;
}

export function isUsageStore(store: PaymentStore): store is PaymentStore & UsageStore {
  const s = store as Partial<UsageStore>;
  return (
    typeof s.reserveUsage === 'function' &&
    typeof s.releaseUsage === 'function' &&
    typeof s.appendLedger === 'function' &&
    typeof s.listLedger === 'function'
  );
}
