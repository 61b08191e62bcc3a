import type { Redis } from 'ioredis';
import { ConfigError, PayRouterError } from '../core/errors.js';
import { bindingKey, type IntentRecord } from '../core/intent/record.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { StatusListeners } from './listeners.js';
import { CORRUPT_REPLY, compareAndSetScript, insertScript } from './redis-scripts.js';
import {
  checkRecord,
  checkStatusChange,
  checkTtl,
  checkVersion,
  describeIssues,
  intentRecordSchema,
  statusChangeSchema,
} from './schema.js';
import type { InsertOptions, PaymentStore, StatusChange } from './types.js';

export interface RedisStoreOptions {
  /** An ioredis client. The store uses it but never closes it: it stays yours. */
  client: Redis;
  /** Namespace for every key and the pub/sub channel. Default `payrouter:`. */
  prefix?: string;
  /** Where connection trouble and failing status listeners are reported. */
  logger?: Logger;
}

const DEFAULT_PREFIX = 'payrouter:';

/**
 * A store shared by many instances through Redis. Writes are single Lua scripts (compare the
 * version, write the record and its indexes, set their expiry), so they are atomic across
 * instances; status changes travel over a pub/sub channel on a connection of the store's own.
 */
export function redisStore(options: RedisStoreOptions): PaymentStore {
  const client: unknown = options?.client;
  if (typeof client !== 'object' || client === null || typeof (client as Redis).evalsha !== 'function') {
    throw new ConfigError('redisStore: pass { client }, an ioredis client (new Redis(url))');
  }
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (typeof prefix !== 'string') throw new ConfigError('redisStore: prefix must be a string');
  return new RedisPaymentStore(client as Redis, prefix, options.logger ?? silentLogger);
}

class RedisPaymentStore implements PaymentStore {
  readonly #client: Redis;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #logger: Logger;
  readonly #listeners: StatusListeners;
  /** Created on the first subscribe: a connection in subscriber mode can run no other command. */
  #subscriber: Redis | undefined;
  #closed = false;

  constructor(client: Redis, prefix: string, logger: Logger) {
    this.#client = client;
    this.#prefix = prefix;
    this.#channel = `${prefix}status`;
    this.#logger = logger;
    this.#listeners = new StatusListeners(logger);
  }

  async get(intentId: string): Promise<IntentRecord | undefined> {
    const raw = await this.#command('get', () => this.#client.get(this.#recordKey(intentId)));
    if (raw === null) return undefined;
    const record = this.#decode(intentId, raw);
    // Redis expires the key on its own clock; this also hides a record our clock says is over.
    return record.expiresAt <= Date.now() ? undefined : record;
  }

  async insert(record: IntentRecord, options: InsertOptions = {}): Promise<boolean> {
    const stored = checkRecord({ ...record, version: 1 });
    const checkOwner = options.bindingOwner !== undefined;
    const result = await this.#command('insert', () =>
      insertScript.run(this.#client, this.#indexedKeys(stored), [
        JSON.stringify(stored),
        expiryArg(stored),
        stored.id,
        isExpired(stored) ? '1' : '0',
        checkOwner ? '1' : '0',
        options.bindingOwner ?? '',
        this.#recordKey(''),
      ]),
    );
    return result === 1;
  }

  async update(record: IntentRecord, expectedVersion: number): Promise<IntentRecord | undefined> {
    checkVersion(expectedVersion);
    const next = checkRecord({ ...record, version: expectedVersion + 1 });
    const json = JSON.stringify(next);
    const result = await this.#command('update', () =>
      compareAndSetScript.run(this.#client, this.#indexedKeys(next), [
        expectedVersion,
        json,
        expiryArg(next),
        next.id,
        isExpired(next) ? '1' : '0',
      ]),
    );
    // A fresh parse is the caller's own copy of exactly what was stored.
    return result === 1 ? this.#decode(next.id, json) : undefined;
  }

  async findByBinding(key: string): Promise<IntentRecord | undefined> {
    const intentId = await this.#command('findByBinding', () => this.#client.get(this.#bindingKey(key)));
    if (intentId === null) return undefined;
    const record = await this.get(intentId);
    return record !== undefined && bindingKey(record.binding) === key ? record : undefined;
  }

  async findByPayment(providerId: string, paymentId: string): Promise<IntentRecord | undefined> {
    const intentId = await this.#command('findByPayment', () =>
      this.#client.get(this.#paymentKey(providerId, paymentId)),
    );
    if (intentId === null) return undefined;
    const record = await this.get(intentId);
    const owns = record?.attempts.some((a) => a.providerId === providerId && a.paymentId === paymentId);
    return owns ? record : undefined;
  }

  async getChoice(subject: string): Promise<string | undefined> {
    const providerId = await this.#command('getChoice', () => this.#client.get(this.#choiceKey(subject)));
    return providerId ?? undefined;
  }

  async setChoice(subject: string, providerId: string, ttlMs: number): Promise<void> {
    const ttl = checkTtl(ttlMs, 'setChoice');
    await this.#command('setChoice', () => this.#client.set(this.#choiceKey(subject), providerId, 'PX', ttl));
  }

  async markEvent(eventId: string, ttlMs: number): Promise<boolean> {
    const ttl = checkTtl(ttlMs, 'markEvent');
    const reply = await this.#command('markEvent', () =>
      this.#client.set(this.#eventKey(eventId), '1', 'PX', ttl, 'NX'),
    );
    return reply === 'OK';
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

  #ensureSubscriber(): void {
    if (this.#subscriber !== undefined) return;
    const baseName = this.#client.options.connectionName;
    const subscriber = this.#client.duplicate({
      connectionName: `${baseName ? baseName : 'payrouter'}:subscriber`,
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
    return parsed.data;
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

  #recordKey(intentId: string): string {
    return `${this.#prefix}intent:${intentId}`;
  }

  #bindingKey(key: string): string {
    return `${this.#prefix}binding:${key}`;
  }

  #paymentKey(providerId: string, paymentId: string): string {
    return `${this.#prefix}payment:${encodeURIComponent(providerId)}:${encodeURIComponent(paymentId)}`;
  }

  #choiceKey(subject: string): string {
    return `${this.#prefix}choice:${subject}`;
  }

  #eventKey(eventId: string): string {
    return `${this.#prefix}event:${eventId}`;
  }

  /** The keys a write touches, in the order the scripts expect: record, binding index, payment index. */
  #indexedKeys(record: IntentRecord): string[] {
    return [
      this.#recordKey(record.id),
      this.#bindingKey(bindingKey(record.binding)),
      ...record.attempts.map((a) => this.#paymentKey(a.providerId, a.paymentId)),
    ];
  }
}

function corrupt(intentId: string, reason: string): PayRouterError {
  return new PayRouterError(
    'store_corrupt',
    `redisStore: stored intent record "${intentId}" is corrupt: ${reason}`,
  );
}

function expiryArg(record: IntentRecord): number {
  return Math.ceil(record.expiresAt);
}

function isExpired(record: IntentRecord): boolean {
  return record.expiresAt <= Date.now();
}
