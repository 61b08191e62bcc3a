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

export interface InsertOptions {
  /** The intent id the binding key must still point at (`null` for none) for the insert to happen. */
  bindingOwner?: string | null;
}

/**
 * Persistence for intents. Every mutation is atomic across all instances sharing the store.
 * Higher-level transitions (claim, complete, status updates) are compare-and-set loops over `update`.
 */
export interface PaymentStore {
  get(intentId: string): Promise<IntentRecord | undefined>;
  /**
   * Insert a new record (version 1) and make it the binding key's intent. Returns false when the id
   * exists, or when `options.bindingOwner` is given and the binding key no longer points at that
   * intent (`null`: at no live intent): another caller, on any instance, opened one first.
   */
  insert(record: IntentRecord, options?: InsertOptions): Promise<boolean>;
  /**
   * Replace the record if its stored version equals `expectedVersion`; the stored copy gets
   * `expectedVersion + 1`. Returns the stored record, or undefined on a version conflict / missing record.
   * Keeps the binding index and the provider-payment index current.
   */
  update(record: IntentRecord, expectedVersion: number): Promise<IntentRecord | undefined>;
  /** The newest intent indexed under this binding key, if it has not expired. */
  findByBinding(key: string): Promise<IntentRecord | undefined>;
  /** The intent that owns a provider payment (from any attempt). */
  findByPayment(providerId: string, paymentId: string): Promise<IntentRecord | undefined>;
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
}
