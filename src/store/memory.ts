import { LRUCache } from 'lru-cache';
import { ConfigError, PayRouterError } from '../core/errors.js';
import { bindingKey, type IntentRecord } from '../core/intent/record.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { StatusListeners } from './listeners.js';
import { checkRecord, checkStatusChange, checkTtl, checkVersion } from './schema.js';
import type { InsertOptions, PaymentStore, StatusChange } from './types.js';

export interface MemoryStoreOptions {
  /** Most intents kept at once (least recently used go first); indexes, choices and event marks are bounded alike. */
  maxEntries?: number;
  /** Where failing status listeners are reported. */
  logger?: Logger;
}

/**
 * Generous on purpose: evicting a paid intent before its tool ran would lose paid work. Size it to
 * the open and recently paid intents you expect in one process; use redisStore beyond that.
 */
const DEFAULT_MAX_ENTRIES = 100_000;
/** An intent usually has one or two provider attempts; room for a few more before the index evicts. */
const PAYMENT_KEYS_PER_INTENT = 4;

/**
 * A store for a single process (the default). State lives in bounded LRU caches whose entries
 * expire lazily on read, so it starts no timers and never keeps the process alive. Every record
 * goes in and comes out as a copy: callers cannot change stored state except through `update`.
 */
export function memoryStore(options: MemoryStoreOptions = {}): PaymentStore {
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new ConfigError(`memoryStore: maxEntries must be a positive integer, got ${maxEntries}`);
  }
  return new MemoryPaymentStore(maxEntries, options.logger ?? silentLogger);
}

/**
 * An LRU bounded by entry count through `maxSize` rather than `max`: with `max`, lru-cache
 * preallocates arrays for every slot up front (about 21 MiB and 100 ms for the default bounds);
 * this way memory grows with use.
 */
function bounded<V extends {}>(entries: number): LRUCache<string, V> {
  return new LRUCache<string, V>({ maxSize: entries, sizeCalculation: () => 1 });
}

/** Records are plain JSON (the schema guarantees it), and a JSON round trip copies them about twice as fast as structuredClone. */
function copyOf(record: IntentRecord): IntentRecord {
  return JSON.parse(JSON.stringify(record)) as IntentRecord;
}

class MemoryPaymentStore implements PaymentStore {
  // ttlAutopurge stays off: lru-cache then checks expiry lazily and sets no purge timers.
  readonly #records: LRUCache<string, IntentRecord>;
  /** binding key -> newest intent id */
  readonly #bindings: LRUCache<string, string>;
  /** provider + payment id -> intent id */
  readonly #payments: LRUCache<string, string>;
  /** subject -> provider id */
  readonly #choices: LRUCache<string, string>;
  readonly #events: LRUCache<string, true>;
  readonly #listeners: StatusListeners;
  #closed = false;

  constructor(maxEntries: number, logger: Logger) {
    this.#records = bounded(maxEntries);
    this.#bindings = bounded(maxEntries);
    this.#payments = bounded(maxEntries * PAYMENT_KEYS_PER_INTENT);
    this.#choices = bounded(maxEntries);
    this.#events = bounded(maxEntries);
    this.#listeners = new StatusListeners(logger);
  }

  async get(intentId: string): Promise<IntentRecord | undefined> {
    const record = this.#live(intentId);
    return record === undefined ? undefined : copyOf(record);
  }

  async insert(record: IntentRecord, options: InsertOptions = {}): Promise<boolean> {
    const stored = checkRecord({ ...record, version: 1 });
    if (this.#live(stored.id) !== undefined) return false;
    if (options.bindingOwner !== undefined) {
      // An index entry whose intent is gone counts as free.
      const owner = this.#bindings.get(bindingKey(stored.binding));
      const live = owner !== undefined && this.#live(owner) !== undefined ? owner : null;
      if (live !== options.bindingOwner) return false;
    }
    this.#write(stored, true);
    return true;
  }

  async update(record: IntentRecord, expectedVersion: number): Promise<IntentRecord | undefined> {
    checkVersion(expectedVersion);
    const next = checkRecord({ ...record, version: expectedVersion + 1 });
    // No await between the check and the write: nothing else runs in between, so this is atomic.
    const current = this.#live(next.id);
    if (current === undefined || current.version !== expectedVersion) return undefined;
    this.#write(next, false);
    return copyOf(next);
  }

  async findByBinding(key: string): Promise<IntentRecord | undefined> {
    const intentId = this.#bindings.get(key);
    if (intentId === undefined) return undefined;
    const record = this.#live(intentId);
    if (record === undefined || bindingKey(record.binding) !== key) return undefined;
    return copyOf(record);
  }

  async findByPayment(providerId: string, paymentId: string): Promise<IntentRecord | undefined> {
    const intentId = this.#payments.get(paymentIndexKey(providerId, paymentId));
    if (intentId === undefined) return undefined;
    const record = this.#live(intentId);
    const owns = record?.attempts.some((a) => a.providerId === providerId && a.paymentId === paymentId);
    return record !== undefined && owns ? copyOf(record) : undefined;
  }

  async getChoice(subject: string): Promise<string | undefined> {
    return this.#choices.get(subject);
  }

  async setChoice(subject: string, providerId: string, ttlMs: number): Promise<void> {
    this.#choices.set(subject, providerId, { ttl: checkTtl(ttlMs, 'setChoice') });
  }

  async markEvent(eventId: string, ttlMs: number): Promise<boolean> {
    const ttl = checkTtl(ttlMs, 'markEvent');
    if (this.#events.has(eventId)) return false;
    this.#events.set(eventId, true, { ttl });
    return true;
  }

  async publish(change: StatusChange): Promise<void> {
    this.#listeners.dispatch(checkStatusChange(change));
  }

  subscribe(listener: (change: StatusChange) => void): () => void {
    if (this.#closed) throw new PayRouterError('store_closed', 'memoryStore: subscribe after close');
    return this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
  }

  /** The stored record itself (not a copy), unless it is missing or past its expiry. */
  #live(intentId: string): IntentRecord | undefined {
    const record = this.#records.get(intentId);
    if (record === undefined) return undefined;
    if (record.expiresAt <= Date.now()) {
      this.#records.delete(intentId);
      return undefined;
    }
    return record;
  }

  #write(record: IntentRecord, isInsert: boolean): void {
    const ttl = Math.ceil(record.expiresAt - Date.now());
    if (ttl <= 0) {
      // Written already expired: nothing to keep, and no index may point at it.
      this.#records.delete(record.id);
      return;
    }
    this.#records.set(record.id, copyOf(record), { ttl });
    const key = bindingKey(record.binding);
    const owner = this.#bindings.get(key);
    // An insert is the newest intent for its binding; an update keeps a newer intent's claim.
    if (isInsert || owner === undefined || owner === record.id) {
      this.#bindings.set(key, record.id, { ttl });
    }
    for (const attempt of record.attempts) {
      this.#payments.set(paymentIndexKey(attempt.providerId, attempt.paymentId), record.id, { ttl });
    }
  }
}

function paymentIndexKey(providerId: string, paymentId: string): string {
  return `${encodeURIComponent(providerId)}:${encodeURIComponent(paymentId)}`;
}
