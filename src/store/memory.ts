import { LRUCache } from 'lru-cache';
import { ConfigError, PayRouterError } from '../core/errors.js';
import { openScopeOf } from '../core/ids.js';
import {
  argumentBytes,
  bindingKey,
  freezeRecord,
  type IntentRecord,
  isOpenStatus,
} from '../core/intent/record.js';
import { type Logger, namespaced, silentLogger } from '../core/logger.js';
import { StatusListeners } from './listeners.js';
import { DEFAULT_MAX_LEDGER, MemoryUsage } from './memory-usage.js';
import { checkRecord, checkStatusChange, checkTtl, checkVersion } from './schema.js';
import type {
  InsertOptions,
  InsertOutcome,
  LeaseOutcome,
  LedgerEntry,
  PaymentStore,
  StatusChange,
  UsageOutcome,
  UsageReservation,
  UsageStore,
} from './types.js';

export interface MemoryStoreOptions {
  /**
   * Most intents kept at once. When full, expired intents go first, then ended ones (unpaid and
   * final, or paid with their result delivered); a paid intent whose tool has not run or whose
   * result was not delivered, and an open one, is never dropped: a new open is refused instead.
   */
  maxEntries?: number;
  /**
   * Ledger entries kept over all payers at most (default 100,000; each payer keeps at most its
   * newest 10,000): past it the oldest entry of any payer goes first. For a ledger that must last,
   * use redisStore or feed your own storage from `router.ledger.on('entry')`.
   */
  maxLedgerEntries?: number;
  /** Where failing status listeners are reported. */
  logger?: Logger;
}

const DEFAULT_MAX_ENTRIES = 100_000;

/**
 * A store for a single process (the default). It starts no timers and never keeps the process
 * alive: expiry is checked on read, and expired intents are swept only when room is needed.
 * Records are frozen when written and handed out as they are, without copies: a caller cannot
 * change stored state except through `update`. Leases are timed on this process's clock, which
 * is the only clock a memory store has.
 */
export function memoryStore(options: MemoryStoreOptions = {}): PaymentStore & UsageStore {
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new ConfigError(`memoryStore: maxEntries must be a positive integer, got ${maxEntries}`);
  }
  const maxLedgerEntries = options.maxLedgerEntries ?? DEFAULT_MAX_LEDGER;
  if (!Number.isInteger(maxLedgerEntries) || maxLedgerEntries < 1) {
    throw new ConfigError(
      `memoryStore: maxLedgerEntries must be a positive integer, got ${maxLedgerEntries}`,
    );
  }
  return new MemoryPaymentStore(
    maxEntries,
    maxLedgerEntries,
    namespaced(options.logger ?? silentLogger, 'store'),
  );
}

/**
 * An LRU bounded by entry count through `maxSize` rather than `max`: with `max`, lru-cache
 * preallocates arrays for every slot up front; this way memory grows with use.
 */
function bounded<V extends {}>(entries: number): LRUCache<string, V> {
  return new LRUCache<string, V>({ maxSize: entries, sizeCalculation: () => 1 });
}

/** Whether dropping the intent to make room loses nothing anyone paid for and still waits on. */
function mayEvict(record: IntentRecord): boolean {
  if (record.status === 'paid') {
    return record.run === 'done' && record.resultDelivered === true;
  }
  return !isOpenStatus(record.status);
}

interface OpenEntry {
  bytes: number;
  expiresAt: number;
}

class MemoryPaymentStore implements PaymentStore, UsageStore {
  readonly #usage: MemoryUsage;
  readonly #maxEntries: number;
  readonly #records = new Map<string, IntentRecord>();
  /** binding key -> newest intent id */
  readonly #bindings = new Map<string, string>();
  /** provider + payment id -> intent id */
  readonly #payments = new Map<string, string>();
  /** open scope (the subject, or its pool) -> its open intents (id -> argument bytes, expiry) */
  readonly #open = new Map<string, Map<string, OpenEntry>>();
  /** Ids that may be dropped to make room, oldest first (a Map keeps insertion order). */
  readonly #evictable = new Map<string, true>();
  /** No record expires before this (a lower bound): a sweep before it would find nothing. */
  #nextExpiry = Number.POSITIVE_INFINITY;
  readonly #leases = new Map<string, { owner: string; until: number }>();
  /** Refunds decided, oldest first (a Map keeps insertion order): bounded by the records they name. */
  readonly #refunds = new Map<string, true>();
  /** subject -> provider id */
  readonly #choices: LRUCache<string, string>;
  readonly #events: LRUCache<string, true>;
  readonly #listeners: StatusListeners;
  #closed = false;

  constructor(maxEntries: number, maxLedgerEntries: number, logger: Logger) {
    this.#maxEntries = maxEntries;
    this.#usage = new MemoryUsage(maxLedgerEntries);
    // ttlAutopurge stays off: lru-cache then checks expiry lazily and sets no purge timers.
    this.#choices = bounded(maxEntries);
    this.#events = bounded(maxEntries);
    this.#listeners = new StatusListeners(logger);
  }

  async get(intentId: string): Promise<IntentRecord | undefined> {
    return this.#live(intentId, Date.now());
  }

  async insert(record: IntentRecord, options: InsertOptions = {}): Promise<InsertOutcome> {
    // Object.assign, not a spread: V8 gives the frozen copy of a spread a hidden class of its own,
    // about 0.4 KiB more per stored intent.
    const stored = freezeRecord(checkRecord(Object.assign({}, record, { version: 1 })));
    const now = Date.now();
    if (this.#live(stored.id, now) !== undefined) return { kind: 'taken' };
    const key = bindingKey(stored.binding);
    if (options.bindingOwner !== undefined) {
      // An index entry whose intent is gone counts as free.
      const owner = this.#bindings.get(key);
      const live = owner !== undefined && this.#live(owner, now) !== undefined ? owner : null;
      if (live !== options.bindingOwner) return { kind: 'taken' };
    }
    if (stored.expiresAt <= now) return { kind: 'inserted' }; // written already expired: nothing to keep
    const open = isOpenStatus(stored.status);
    const bytes = open ? argumentBytes(stored) : 0;
    if (open && options.limits !== undefined) {
      const mine = this.#openOf(openScopeOf(stored.binding.subject), now);
      let used = 0;
      for (const entry of mine?.values() ?? []) used += entry.bytes;
      const count = mine?.size ?? 0;
      const { openPerSubject, openArgumentBytesPerSubject } = options.limits;
      if (count >= openPerSubject) {
        return { kind: 'limit', what: 'open', open: count, bytes: used, limit: openPerSubject };
      }
      if (used + bytes > openArgumentBytesPerSubject) {
        return { kind: 'limit', what: 'bytes', open: count, bytes: used, limit: openArgumentBytesPerSubject };
      }
    }
    if (this.#records.size >= this.#maxEntries && !this.#makeRoom(now)) return { kind: 'full' };
    const openUntil =
      options.openMs === undefined ? stored.expiresAt : Math.min(stored.expiresAt, now + options.openMs);
    this.#write(stored, key, true, openUntil);
    return { kind: 'inserted' };
  }

  async update(record: IntentRecord, expectedVersion: number): Promise<IntentRecord | undefined> {
    checkVersion(expectedVersion);
    const copy = Object.assign({}, record, { version: expectedVersion + 1 });
    // No await between the check and the write: nothing else runs in between, so this is atomic.
    const current = typeof copy.id === 'string' ? this.#live(copy.id, Date.now()) : undefined;
    const next = checkRecord(copy, current);
    if (current === undefined || current.version !== expectedVersion) return undefined;
    const stored = freezeRecord(next);
    if (stored.expiresAt <= Date.now()) {
      this.#delete(stored.id);
      return stored;
    }
    this.#write(stored, bindingKey(stored.binding), false);
    return stored;
  }

  async findByBinding(key: string): Promise<IntentRecord | undefined> {
    const intentId = this.#bindings.get(key);
    if (intentId === undefined) return undefined;
    const record = this.#live(intentId, Date.now());
    if (record === undefined || bindingKey(record.binding) !== key) return undefined;
    return record;
  }

  async findByPayment(providerId: string, paymentId: string): Promise<IntentRecord | undefined> {
    const intentId = this.#payments.get(paymentIndexKey(providerId, paymentId));
    if (intentId === undefined) return undefined;
    const record = this.#live(intentId, Date.now());
    const owns = record?.attempts.some((a) => a.providerId === providerId && a.paymentId === paymentId);
    return owns ? record : undefined;
  }

  async acquireLease(intentId: string, owner: string, leaseMs: number): Promise<LeaseOutcome> {
    const ttl = checkTtl(leaseMs, 'acquireLease');
    const now = Date.now();
    const held = this.#leases.get(intentId);
    if (held !== undefined && held.until > now && held.owner !== owner) {
      return { kind: 'busy', remainingMs: held.until - now };
    }
    this.#leases.set(intentId, { owner, until: now + ttl });
    return { kind: 'acquired' };
  }

  async renewLease(intentId: string, owner: string, leaseMs: number): Promise<boolean> {
    const ttl = checkTtl(leaseMs, 'renewLease');
    const now = Date.now();
    const held = this.#leases.get(intentId);
    if (held === undefined || held.owner !== owner || held.until <= now) return false;
    held.until = now + ttl;
    return true;
  }

  async releaseLease(intentId: string, owner: string): Promise<void> {
    if (this.#leases.get(intentId)?.owner === owner) this.#leases.delete(intentId);
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

  async noteRefund(intentId: string): Promise<void> {
    if (this.#records.has(intentId)) this.#refunds.set(intentId, true);
  }

  async refundsToSettle(limit: number): Promise<string[]> {
    const ids: string[] = [];
    for (const id of this.#refunds.keys()) {
      if (ids.length >= limit) break;
      ids.push(id);
    }
    return ids;
  }

  async dropRefund(intentId: string): Promise<void> {
    this.#refunds.delete(intentId);
  }

  subscribe(listener: (change: StatusChange) => void): () => void {
    if (this.#closed) throw new PayRouterError('store_closed', 'memoryStore: subscribe after close');
    return this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
  }

  reserveUsage(reservation: UsageReservation): Promise<UsageOutcome> {
    return this.#usage.reserveUsage(reservation);
  }

  releaseUsage(scope: string, id: string): Promise<boolean> {
    return this.#usage.releaseUsage(scope, id);
  }

  appendLedger(entry: LedgerEntry, retentionMs: number): Promise<boolean> {
    return this.#usage.appendLedger(entry, retentionMs);
  }

  listLedger(subject: string, since: number, limit: number): Promise<LedgerEntry[]> {
    return this.#usage.listLedger(subject, since, limit);
  }

  /** The stored record, unless it is missing or past its expiry (then it is dropped now). */
  #live(intentId: string, now: number): IntentRecord | undefined {
    const record = this.#records.get(intentId);
    if (record === undefined) return undefined;
    if (record.expiresAt <= now) {
      this.#delete(intentId);
      return undefined;
    }
    return record;
  }

  /** The subject's open intents, with the ones that expired or ended dropped. */
  #openOf(subject: string, now: number): Map<string, OpenEntry> | undefined {
    const mine = this.#open.get(subject);
    if (mine === undefined) return undefined;
    for (const [id, entry] of mine) {
      if (entry.expiresAt <= now || this.#live(id, now) === undefined) mine.delete(id);
    }
    if (mine.size === 0) {
      this.#open.delete(subject);
      return undefined;
    }
    return mine;
  }

  /**
   * Free one slot: expired intents first (swept only when one can have expired), then the
   * oldest ended one. Never a paid intent still owed its run or result, never an open one.
   */
  #makeRoom(now: number): boolean {
    if (this.#nextExpiry <= now) {
      let next = Number.POSITIVE_INFINITY;
      for (const [id, record] of this.#records) {
        if (record.expiresAt <= now) this.#delete(id);
        else if (record.expiresAt < next) next = record.expiresAt;
      }
      this.#nextExpiry = next;
    }
    for (const id of this.#evictable.keys()) {
      if (this.#records.size < this.#maxEntries) break;
      const record = this.#records.get(id);
      this.#evictable.delete(id);
      if (record !== undefined && mayEvict(record)) this.#delete(id);
    }
    return this.#records.size < this.#maxEntries;
  }

  #write(record: IntentRecord, key: string, isInsert: boolean, openUntil = record.expiresAt): void {
    const id = record.id;
    const previous = this.#records.get(id);
    this.#records.set(id, record);
    if (record.expiresAt < this.#nextExpiry) this.#nextExpiry = record.expiresAt;
    const owner = this.#bindings.get(key);
    // An insert is the newest intent for its binding; an update keeps a newer intent's claim.
    if (isInsert || owner === undefined || owner === id) this.#bindings.set(key, id);
    // Transitions that leave the attempts alone keep the same (frozen) array: nothing to index.
    if (previous?.attempts !== record.attempts) {
      for (const attempt of record.attempts) {
        this.#payments.set(paymentIndexKey(attempt.providerId, attempt.paymentId), id);
      }
    }
    const subject = openScopeOf(record.binding.subject);
    if (!isOpenStatus(record.status)) {
      this.#forgetOpen(subject, id);
    } else if (isInsert) {
      // Counted from its open on, until its link's life ends or it expires; an update never
      // counts it again (as in redisStore, whose open set only an insert adds to).
      let mine = this.#open.get(subject);
      if (mine === undefined) {
        mine = new Map();
        this.#open.set(subject, mine);
      }
      mine.set(id, { bytes: argumentBytes(record), expiresAt: openUntil });
    }
    this.#evictable.delete(id);
    if (mayEvict(record)) this.#evictable.set(id, true);
  }

  #delete(id: string): void {
    const record = this.#records.get(id);
    if (record === undefined) return;
    this.#records.delete(id);
    const key = bindingKey(record.binding);
    if (this.#bindings.get(key) === id) this.#bindings.delete(key);
    for (const attempt of record.attempts) {
      const index = paymentIndexKey(attempt.providerId, attempt.paymentId);
      if (this.#payments.get(index) === id) this.#payments.delete(index);
    }
    this.#forgetOpen(openScopeOf(record.binding.subject), id);
    this.#evictable.delete(id);
    this.#leases.delete(id);
    this.#refunds.delete(id);
  }

  #forgetOpen(subject: string, id: string): void {
    const mine = this.#open.get(subject);
    if (mine?.delete(id) && mine.size === 0) this.#open.delete(subject);
  }
}

function paymentIndexKey(providerId: string, paymentId: string): string {
  return `${encodeURIComponent(providerId)}:${encodeURIComponent(paymentId)}`;
}
