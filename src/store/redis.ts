import { ConfigError, PayRouterError } from '../core/errors.js';
import { openScopeOf, slotOfIntentId, subjectSlot } from '../core/ids.js';
import {
  argumentBytes,
  bindingKey,
  freezeRecord,
  type IntentRecord,
  isOpenStatus,
} from '../core/intent/record.js';
import { type Logger, namespaced, silentLogger } from '../core/logger.js';
import { StatusListeners } from './listeners.js';
import type { RedisClient, RedisSubscriberClient } from './redis-client.js';
import {
  CORRUPT_REPLY,
  compareAndSetScript,
  insertScript,
  leaseHeldScript,
  legacyCompareAndSetScript,
  releaseLeaseScript,
  renewLeaseScript,
} from './redis-scripts.js';
import { RedisUsage } from './redis-usage.js';
import {
  checkRecord,
  checkStatusChange,
  checkTtl,
  checkVersion,
  describeIssues,
  intentRecordSchema,
  statusChangeSchema,
} from './schema.js';
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

export interface RedisStoreOptions {
  /**
   * An ioredis client (`new Redis(url)`, or a `Cluster`). The store uses it but never closes it:
   * it stays yours.
   */
  client: RedisClient;
  /** Namespace for every key and the pub/sub channel. Default `payrouter:`. */
  prefix?: string;
  /** Where connection trouble and failing status listeners are reported. */
  logger?: Logger;
  /**
   * Also look for intents written by payrouter 0.1 (keys `<prefix>intent:<id>`, `<prefix>binding:…`,
   * `<prefix>payment:…`), so a payment made before an upgrade is still found and run. Intents with
   * such ids are always read by id; this adds the binding and payment index fallbacks (the old
   * binding key is read in the same command as the new one; over a Redis Cluster, where 0.1 could
   * not run, never). Default true; turn it off once such intents have expired (30 days after the
   * upgrade at most).
   */
  legacyKeys?: boolean;
}

const DEFAULT_PREFIX = 'payrouter:';
/** How long a remembered method read with a binding look-up stands in for a `getChoice` read. */
const CHOICE_KEPT_MS = 1000;
const CHOICES_KEPT_MAX = 1000;

/**
 * A store shared by many instances through Redis. Writes are single Lua scripts (compare the
 * version, write the record, touch the indexes that change), so they are atomic across
 * instances. All keys of one subject share a hash slot (`<prefix>{<slot>}:…`, the slot tag also
 * carried by the subject's intent ids), so a subject's intents and open limits change in one
 * script and Redis Cluster works. Every expiry is relative (`PX`) or read from Redis's `TIME`:
 * only the Redis clock decides when a record or a run lease ends. Status changes travel over a
 * pub/sub channel on a connection of the store's own.
 *
 * Key layout: record `{s}:i:<id>`, binding index `{s}:b:<binding key>`, open set `{s}:o:<subject or pool>`,
 * run lease `{s}:l:<id>`, remembered choice `{s}:c:<subject>`; provider-payment index
 * `p:<provider>:<payment>` and event marks `e:<event>` live in their own slots.
 */
export function redisStore(options: RedisStoreOptions): PaymentStore & UsageStore {
  const client: unknown = options?.client;
  if (
    typeof client !== 'object' ||
    client === null ||
    typeof (client as RedisClient).evalsha !== 'function'
  ) {
    throw new ConfigError('redisStore: pass { client }, an ioredis client (new Redis(url))');
  }
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (typeof prefix !== 'string') throw new ConfigError('redisStore: prefix must be a string');
  return new RedisPaymentStore(
    client as RedisClient,
    prefix,
    namespaced(options.logger ?? silentLogger, 'store'),
    options.legacyKeys ?? true,
  );
}

class RedisPaymentStore implements PaymentStore, UsageStore {
  readonly #usage: RedisUsage;
  readonly #client: RedisClient;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #logger: Logger;
  readonly #listeners: StatusListeners;
  /** Created on the first subscribe: a connection in subscriber mode can run no other command. */
  #subscriber: RedisSubscriberClient | undefined;
  #closed = false;
  readonly #legacyKeys: boolean;
  /** An ioredis Cluster says so (`isCluster`); anything else is taken for a single Redis. */
  readonly #cluster: boolean;
  /**
   * Remembered methods read with a binding look-up, per subject, each for the next `getChoice`
   * within CHOICE_KEPT_MS: a payment that opens reads the choice right after its look-up.
   */
  readonly #choices = new Map<string, { providerId: string | null; at: number }>();
  /** setChoice calls so far: a look-up that overlapped one keeps no copy of the choice. */
  #choiceWrites = 0;

  constructor(client: RedisClient, prefix: string, logger: Logger, legacyKeys: boolean) {
    this.#legacyKeys = legacyKeys;
    this.#cluster = (client as { isCluster?: unknown }).isCluster === true;
    this.#client = client;
    this.#prefix = prefix;
    this.#channel = `${prefix}status`;
    this.#logger = logger;
    this.#listeners = new StatusListeners(logger);
    this.#usage = new RedisUsage(client, prefix, (operation, run) => this.#command(operation, run));
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

  async get(intentId: string): Promise<IntentRecord | undefined> {
    const raw = await this.#command('get', () => this.#client.get(this.#recordKey(intentId)));
    // Redis ends the key on its own clock; no instance clock second-guesses it.
    return raw === null ? undefined : this.#decode(intentId, raw);
  }

  async insert(record: IntentRecord, options: InsertOptions = {}): Promise<InsertOutcome> {
    const stored = checkRecord({ ...record, version: 1 });
    const slot = subjectSlot(stored.binding.subject);
    if (slotOfIntentId(stored.id) !== slot) {
      throw new PayRouterError(
        'store_invalid_record',
        `Refusing to store intent record: id "${stored.id}" does not carry its subject's slot tag (make ids with newIntentId(subject))`,
      );
    }
    const ttl = ttlOf(stored);
    if (ttl <= 0) return { kind: 'inserted' }; // written already expired: nothing to keep
    // An owner written before slot tags has no new binding index: expect none.
    const owner =
      options.bindingOwner === undefined
        ? undefined
        : options.bindingOwner !== null && slotOfIntentId(options.bindingOwner) === undefined
          ? null
          : options.bindingOwner;
    const open = isOpenStatus(stored.status);
    const bytes = argumentBytes(stored);
    const limits = options.limits;
    const reply = await this.#command('insert', () =>
      insertScript.run(
        this.#client,
        [
          this.#recordKey(stored.id),
          this.#bindingIndexKey(slot, bindingKey(stored.binding)),
          this.#openKey(slot, stored.binding.subject),
        ],
        [
          JSON.stringify(stored),
          ttl,
          stored.id,
          owner === undefined ? '0' : '1',
          owner ?? '',
          this.#recordKeyPrefix(slot),
          open ? '1' : '0',
          limits === undefined ? '' : limits.openPerSubject,
          limits === undefined ? '' : limits.openArgumentBytesPerSubject,
          bytes,
          openMember(stored.id, bytes),
          Math.max(1, Math.min(ttl, Math.ceil(options.openMs ?? ttl))),
        ],
      ),
    );
    const [code, count, used, limit] = numbers(reply);
    switch (code) {
      case 1:
        await this.#indexPayments(stored, 0, ttl);
        return { kind: 'inserted' };
      case 2:
        return { kind: 'limit', what: 'open', open: count ?? 0, bytes: used ?? 0, limit: limit ?? 0 };
      case 3:
        return { kind: 'limit', what: 'bytes', open: count ?? 0, bytes: used ?? 0, limit: limit ?? 0 };
      default:
        return { kind: 'taken' };
    }
  }

  async update(record: IntentRecord, expectedVersion: number): Promise<IntentRecord | undefined> {
    checkVersion(expectedVersion);
    const next = checkRecord({ ...record, version: expectedVersion + 1 });
    const json = JSON.stringify(next);
    const ttl = ttlOf(next);
    const slot = slotOfIntentId(next.id);
    const reply = await this.#command('update', () =>
      slot === undefined
        ? legacyCompareAndSetScript.run(
            this.#client,
            [this.#recordKey(next.id)],
            [expectedVersion, json, Math.max(1, ttl), ttl <= 0 ? '1' : '0'],
          )
        : compareAndSetScript.run(
            this.#client,
            [
              this.#recordKey(next.id),
              this.#openKey(slot, next.binding.subject),
              this.#bindingIndexKey(slot, bindingKey(next.binding)),
            ],
            [
              expectedVersion,
              json,
              Math.max(1, ttl),
              next.status,
              openMember(next.id, argumentBytes(next)),
              ttl <= 0 ? '1' : '0',
              next.expiresAt,
              next.expiresAt - ttl,
            ],
          ),
    );
    const [code, attemptsBefore] = numbers(reply);
    if (code !== 1) return undefined;
    await this.#indexPayments(next, attemptsBefore ?? 0, ttl);
    // The caller's own record is what was stored: handed back frozen, not re-read or re-parsed.
    return freezeRecord(next);
  }

  /**
   * One MGET: the binding index, the payer's remembered method (kept a moment for the `getChoice`
   * that follows when a payment opens) and, on a single Redis, a 0.1 binding key. The record is then
   * read by its id: a second command only when there is one.
   */
  async findByBinding(key: string): Promise<IntentRecord | undefined> {
    const subject = subjectOfBindingKey(key);
    const slot = subjectSlot(subject);
    const keys = [this.#bindingIndexKey(slot, key), this.#choiceKey(subject)];
    // 0.1's scripts wrote keys of several hash slots at once, which a Cluster refuses: only a
    // single Redis can hold its keys (and a single Redis takes them in one MGET).
    if (this.#legacyKeys && !this.#cluster) keys.push(`${this.#prefix}binding:${key}`);
    const writes = this.#choiceWrites;
    const [id, choice, legacyId] = await this.#command('findByBinding', () => this.#client.mget(...keys));
    // A setChoice of this store sent meanwhile may have landed after the MGET read: keep nothing.
    if (writes === this.#choiceWrites) this.#keepChoice(subject, choice ?? null);
    const owner = id ?? legacyId ?? null;
    if (owner === null) return undefined;
    const record = await this.get(owner);
    return record !== undefined && bindingKey(record.binding) === key ? record : undefined;
  }

  async findByPayment(providerId: string, paymentId: string): Promise<IntentRecord | undefined> {
    let intentId = await this.#command('findByPayment', () =>
      this.#client.get(this.#paymentKey(providerId, paymentId)),
    );
    if (intentId === null && this.#legacyKeys) {
      intentId = await this.#command('findByPayment', () =>
        this.#client.get(
          `${this.#prefix}payment:${encodeURIComponent(providerId)}:${encodeURIComponent(paymentId)}`,
        ),
      );
    }
    if (intentId === null) return undefined;
    const record = await this.get(intentId);
    const owns = record?.attempts.some((a) => a.providerId === providerId && a.paymentId === paymentId);
    return owns ? record : undefined;
  }

  async acquireLease(intentId: string, owner: string, leaseMs: number): Promise<LeaseOutcome> {
    const ttl = checkTtl(leaseMs, 'acquireLease');
    const key = this.#leaseKey(intentId);
    for (let round = 0; round < 3; round++) {
      // The common case, one command: nobody holds it.
      const set = await this.#command('acquireLease', () => this.#client.set(key, owner, 'PX', ttl, 'NX'));
      if (set === 'OK') return { kind: 'acquired' };
      const left = Number(
        await this.#command('acquireLease', () => leaseHeldScript.run(this.#client, [key], [owner, ttl])),
      );
      if (left === -1) return { kind: 'acquired' };
      if (left >= 0) return { kind: 'busy', remainingMs: left };
      // -2: it ran out between the two commands; take it now.
    }
    return { kind: 'busy', remainingMs: 1 };
  }

  async renewLease(intentId: string, owner: string, leaseMs: number): Promise<boolean> {
    const ttl = checkTtl(leaseMs, 'renewLease');
    const reply = await this.#command('renewLease', () =>
      renewLeaseScript.run(this.#client, [this.#leaseKey(intentId)], [owner, ttl]),
    );
    return reply === 1;
  }

  async releaseLease(intentId: string, owner: string): Promise<void> {
    await this.#command('releaseLease', () =>
      releaseLeaseScript.run(this.#client, [this.#leaseKey(intentId)], [owner]),
    );
  }

  async getChoice(subject: string): Promise<string | undefined> {
    const kept = this.#choices.get(subject);
    if (kept !== undefined) {
      this.#choices.delete(subject);
      if (performance.now() - kept.at <= CHOICE_KEPT_MS) return kept.providerId ?? undefined;
    }
    const providerId = await this.#command('getChoice', () => this.#client.get(this.#choiceKey(subject)));
    return providerId ?? undefined;
  }

  async setChoice(subject: string, providerId: string, ttlMs: number): Promise<void> {
    const ttl = checkTtl(ttlMs, 'setChoice');
    this.#choiceWrites++;
    this.#choices.delete(subject);
    await this.#command('setChoice', () => this.#client.set(this.#choiceKey(subject), providerId, 'PX', ttl));
  }

  async markEvent(eventId: string, ttlMs: number): Promise<boolean> {
    const ttl = checkTtl(ttlMs, 'markEvent');
    const reply = await this.#command('markEvent', () =>
      this.#client.set(this.#eventKey(eventId), '1', 'PX', ttl, 'NX'),
    );
    return reply === 'OK';
  }

  // One sorted set of the whole store (not one subject's slot): each command names only it, so it
  // works on Cluster; noted before the refund is decided, so a crash in between leaves only an id
  // the sweep drops.
  async noteRefund(intentId: string): Promise<void> {
    await this.#command('noteRefund', () => this.#client.zadd(this.#refundsKey(), Date.now(), intentId));
  }

  async refundsToSettle(limit: number): Promise<string[]> {
    const count = Math.max(1, Math.min(Math.floor(limit), 1_000));
    return this.#command('refundsToSettle', () =>
      this.#client.zrangebyscore(this.#refundsKey(), '-inf', '+inf', 'LIMIT', 0, count),
    );
  }

  async dropRefund(intentId: string): Promise<void> {
    await this.#command('dropRefund', () => this.#client.zrem(this.#refundsKey(), intentId));
  }

  async publish(change: StatusChange): Promise<void> {
    const message = JSON.stringify(checkStatusChange(change));
    await this.#command('publish', () => this.#client.publish(this.#channel, message));
  }

  subscribe(listener: (change: StatusChange) => void): () => void {
    if (this.#closed) throw new PayRouterError('store_closed', 'redisStore: subscribe after close');
    const unsubscribe = this.#listeners.add(listener);
    this.#ensureSubscriber();
    return unsubscribe;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber === undefined) return;
    if (subscriber.status === 'ready') {
      try {
        await subscriber.quit();
        return;
      } catch {
        // fall through: drop the connection instead
      }
    }
    // Not connected (yet): QUIT would wait in the offline queue, so cut the connection now.
    subscriber.disconnect();
  }

  /** The choice a binding look-up read, for the one `getChoice` that may follow. */
  #keepChoice(subject: string, providerId: string | null): void {
    this.#choices.delete(subject);
    this.#choices.set(subject, { providerId, at: performance.now() });
    // Oldest first in a Map: a look-up whose choice nobody asked for is dropped in turn.
    if (this.#choices.size > CHOICES_KEPT_MAX) {
      const oldest = this.#choices.keys().next().value;
      if (oldest !== undefined) this.#choices.delete(oldest);
    }
  }

  #ensureSubscriber(): void {
    if (this.#subscriber !== undefined) return;
    const client = this.#client;
    // A Redis takes the override as options; a Cluster (whose first parameter is startup nodes)
    // finds no nodes in it and keeps its own. RedisClient leaves the parameter open for both.
    const duplicate = client.duplicate.bind(client) as (override: {
      connectionName: string;
    }) => RedisSubscriberClient;
    const baseName = (client as { options?: { connectionName?: unknown } }).options?.connectionName;
    const subscriber = duplicate({
      connectionName: `${typeof baseName === 'string' && baseName !== '' ? baseName : 'payrouter'}:subscriber`,
    });
    this.#subscriber = subscriber;
    subscriber.on('error', (error: unknown) => {
      this.#logger.warn('redisStore: subscriber connection error', { error });
    });
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.#channel) this.#onMessage(message);
    });
    // ioredis re-subscribes by itself after a reconnect.
    subscriber.subscribe(this.#channel).catch((error: unknown) => {
      if (!this.#closed) this.#logger.error('redisStore: could not subscribe to status changes', { error });
    });
  }

  #onMessage(message: string): void {
    let payload: unknown;
    try {
      payload = JSON.parse(message);
    } catch {
      this.#logger.warn('redisStore: ignoring a status message that is not JSON', { channel: this.#channel });
      return;
    }
    const parsed = statusChangeSchema.safeParse(payload);
    if (!parsed.success) {
      this.#logger.warn('redisStore: ignoring a malformed status message', {
        channel: this.#channel,
        issues: describeIssues(parsed.error),
      });
      return;
    }
    this.#listeners.dispatch(parsed.data);
  }

  /** Parses and validates a stored record; anything else under the key is a clear error, not a crash. */
  #decode(intentId: string, raw: string): IntentRecord {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw corrupt(intentId, 'not valid JSON');
    }
    const parsed = intentRecordSchema.safeParse(value);
    if (!parsed.success) throw corrupt(intentId, describeIssues(parsed.error));
    if (parsed.data.id !== intentId) throw corrupt(intentId, `it holds the record of "${parsed.data.id}"`);
    return freezeRecord(parsed.data);
  }

  /**
   * The provider-payment index lives in other slots than the intent: written once per new
   * attempt (from `from` on), not on every update.
   */
  async #indexPayments(record: IntentRecord, from: number, ttl: number): Promise<void> {
    const added = record.attempts.slice(from);
    if (added.length === 0 || ttl <= 0) return;
    await this.#command('index payments', () =>
      Promise.all(
        added.map((a) => this.#client.set(this.#paymentKey(a.providerId, a.paymentId), record.id, 'PX', ttl)),
      ),
    );
  }

  /** Runs one Redis call, turning its failures into PayRouterErrors with a stable code. */
  async #command<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof PayRouterError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      if (message.includes(CORRUPT_REPLY) || message.startsWith('WRONGTYPE')) {
        throw new PayRouterError(
          'store_corrupt',
          `redisStore: ${operation} found a stored value it cannot read (${message.replace(`${CORRUPT_REPLY} `, '')})`,
          { cause: error },
        );
      }
      throw new PayRouterError('store_unavailable', `redisStore: ${operation} failed: ${message}`, {
        cause: error,
      });
    }
  }

  /** `{slot}:i:<id>`; an id without a slot tag was written before slot tags: its old key. */
  #recordKey(intentId: string): string {
    const slot = slotOfIntentId(intentId);
    return slot === undefined
      ? `${this.#prefix}intent:${intentId}`
      : `${this.#recordKeyPrefix(slot)}${intentId}`;
  }

  #recordKeyPrefix(slot: string): string {
    return `${this.#prefix}{${slot}}:i:`;
  }

  #bindingIndexKey(slot: string, key: string): string {
    return `${this.#prefix}{${slot}}:b:${key}`;
  }

  /** The open set of a subject, or of its pool (in the pool's slot, which is the subject's). */
  #openKey(slot: string, subject: string): string {
    return `${this.#prefix}{${slot}}:o:${encodeURIComponent(openScopeOf(subject))}`;
  }

  #leaseKey(intentId: string): string {
    const slot = slotOfIntentId(intentId);
    return slot === undefined ? `${this.#prefix}lease:${intentId}` : `${this.#prefix}{${slot}}:l:${intentId}`;
  }

  #paymentKey(providerId: string, paymentId: string): string {
    return `${this.#prefix}p:${encodeURIComponent(providerId)}:${encodeURIComponent(paymentId)}`;
  }

  #choiceKey(subject: string): string {
    return `${this.#prefix}{${subjectSlot(subject)}}:c:${encodeURIComponent(subject)}`;
  }

  #refundsKey(): string {
    return `${this.#prefix}refunds`;
  }

  #eventKey(eventId: string): string {
    return `${this.#prefix}e:${eventId}`;
  }
}

function corrupt(intentId: string, reason: string): PayRouterError {
  return new PayRouterError(
    'store_corrupt',
    `redisStore: stored intent record "${intentId}" is corrupt: ${reason}`,
  );
}

/** Time left to live, in ms (relative, so the Redis clock ends it); 0 or less: already expired. */
function ttlOf(record: IntentRecord): number {
  return Math.ceil(record.expiresAt - Date.now());
}

/** A member of a subject's open set: the argument bytes it holds, then its id. */
function openMember(intentId: string, bytes: number): string {
  return `${bytes}:${intentId}`;
}

/** The subject a binding key names (its first, URI-encoded part). */
function subjectOfBindingKey(key: string): string {
  const first = key.split('|', 1)[0] ?? '';
  try {
    return decodeURIComponent(first);
  } catch {
    return first;
  }
}

/** A script's array reply as numbers. */
function numbers(reply: unknown): number[] {
  return Array.isArray(reply) ? reply.map((n) => Number(n)) : [Number(reply)];
}
