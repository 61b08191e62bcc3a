import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newIntentId, slotOfIntentId, subjectSlot } from '../src/core/ids.js';
import { bindingKey, type PaymentStore, redisStore } from '../src/store/index.js';
import { commandStats } from './support/redis-commands.js';
import { startRedisServer } from './support/redis-server.js';
import {
  attempt,
  describeStoreContract,
  eventually,
  makeRecord,
  recorder,
  sleep,
  untilSubscribed,
  waitPast,
} from './support/store-contract.js';

let server: Awaited<ReturnType<typeof startRedisServer>>;
/** Every client and store a test opens, closed after it. */
const opened: { clients: Redis[]; stores: PaymentStore[] } = { clients: [], stores: [] };

function client(options: { connectionName?: string } = {}): Redis {
  const redis = new Redis(server.url, { maxRetriesPerRequest: 2, ...options });
  opened.clients.push(redis);
  return redis;
}

function store(redis: Redis, prefix: string): PaymentStore {
  const created = redisStore({ client: redis, prefix });
  opened.stores.push(created);
  return created;
}

const freshPrefix = () => `t-${randomUUID()}:`;

beforeAll(async () => {
  server = await startRedisServer();
});

async function closeOpened(): Promise<void> {
  await Promise.all(opened.stores.splice(0).map((s) => s.close()));
  await Promise.all(opened.clients.splice(0).map((c) => c.quit()));
}

afterEach(closeOpened);

afterAll(async () => {
  await server?.stop();
});

describeStoreContract('redisStore', async () => {
  // Two clients and two stores on one prefix: two instances of a server sharing Redis.
  const prefix = freshPrefix();
  return {
    store: store(client(), prefix),
    other: store(client(), prefix),
    cleanup: closeOpened,
  };
});

describe('redisStore', () => {
  it('reports a corrupt record under an intent key as a clear error', async () => {
    const redis = client();
    const prefix = freshPrefix();
    const payments = store(redis, prefix);

    await redis.set(`${prefix}intent:not-json`, '{"id": "not-json", ver');
    await expect(payments.get('not-json')).rejects.toMatchObject({
      code: 'store_corrupt',
      message: expect.stringMatching(/"not-json" is corrupt: not valid JSON/),
    });

    const wrongShape = { ...makeRecord({ id: 'wrong-shape' }), status: 'maybe', attempts: 'none' };
    await redis.set(`${prefix}intent:wrong-shape`, JSON.stringify(wrongShape));
    const error = await payments.get('wrong-shape').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'store_corrupt' });
    expect((error as Error).message).toMatch(/status/);
    expect((error as Error).message).toMatch(/attempts/);

    const misplaced = makeRecord({ id: 'someone-else' });
    await redis.set(`${prefix}intent:misplaced`, JSON.stringify(misplaced));
    await expect(payments.get('misplaced')).rejects.toMatchObject({ code: 'store_corrupt' });

    await redis.hset(`${prefix}intent:a-hash`, 'version', '1');
    await expect(payments.get('a-hash')).rejects.toMatchObject({ code: 'store_corrupt' });
    await expect(payments.update(makeRecord({ id: 'a-hash' }), 1)).rejects.toMatchObject({
      code: 'store_corrupt',
    });

    // The compare-and-set script refuses to overwrite what it cannot read.
    await expect(payments.update(makeRecord({ id: 'not-json' }), 1)).rejects.toMatchObject({
      code: 'store_corrupt',
    });
    expect(await redis.get(`${prefix}intent:not-json`)).toBe('{"id": "not-json", ver');

    // An index that leads to a corrupt record surfaces the same error.
    const indexed = makeRecord();
    await redis.set(`${prefix}binding:${bindingKey(indexed.binding)}`, 'not-json');
    await expect(payments.findByBinding(bindingKey(indexed.binding))).rejects.toMatchObject({
      code: 'store_corrupt',
    });
  });

  it('keeps stores with different prefixes apart, keys and channel alike', async () => {
    const redis = client();
    const [a, b] = [freshPrefix(), freshPrefix()];
    const storeA = store(redis, a);
    const storeB = store(redis, b);

    const record = makeRecord({ attempts: [attempt('walleot', 'w_iso')] });
    await storeA.insert(record);
    expect(await storeB.get(record.id)).toBeUndefined();
    expect(await storeB.findByBinding(bindingKey(record.binding))).toBeUndefined();
    expect(await storeB.findByPayment('walleot', 'w_iso')).toBeUndefined();
    expect(await storeB.insert({ ...record, description: 'b' })).toEqual({ kind: 'inserted' });
    expect((await storeA.get(record.id))?.description).toBe('Process data');

    expect(await storeA.markEvent('evt_iso', 60_000)).toBe(true);
    expect(await storeB.markEvent('evt_iso', 60_000)).toBe(true);
    await storeA.setChoice('alice', 'stripe', 60_000);
    expect(await storeB.getChoice('alice')).toBeUndefined();

    const slot = slotOfIntentId(record.id);
    const subject = encodeURIComponent(record.binding.subject);
    expect((await redis.keys(`${a}*`)).sort()).toEqual(
      [
        `${a}{${slot}}:b:${bindingKey(record.binding)}`,
        `${a}{${slot}}:i:${record.id}`,
        `${a}{${slot}}:o:${subject}`,
        `${a}{${subjectSlot('alice')}}:c:alice`,
        `${a}e:evt_iso`,
        `${a}p:walleot:w_iso`,
      ].sort(),
    );

    const onA = recorder(storeA);
    const onB = recorder(storeB);
    await untilSubscribed(storeA, [storeA]);
    await untilSubscribed(storeB, [storeB]);
    const intentId = `pi_${randomUUID()}`;
    await storeA.publish({ intentId, status: 'paid', version: 2 });
    await storeB.publish({ intentId: `${intentId}-b`, status: 'paid', version: 2 });
    // B's own message arrives after A's would have: both were published on one connection, in order.
    await eventually(() => onB.of(`${intentId}-b`).length === 1, 'delivery on b');
    await eventually(() => onA.of(intentId).length === 1, 'delivery on a');
    expect(onB.of(intentId)).toEqual([]);
    expect(onA.of(`${intentId}-b`)).toEqual([]);
  });

  it('lets the record and every key it indexes expire in Redis itself, relative to the Redis clock', async () => {
    const redis = client();
    const prefix = freshPrefix();
    const payments = store(redis, prefix);
    const record = makeRecord({ attempts: [attempt('walleot', 'w_ttl')] });
    await payments.insert(record);
    await payments.acquireLease(record.id, 'runner', 60_000);
    const keys = await redis.keys(`${prefix}*`);
    expect(keys).toHaveLength(5); // record, binding index, open set, payment index, lease
    for (const key of keys) expect(await redis.pttl(key)).toBeGreaterThan(0);

    const expiresAt = Date.now() + 100;
    await payments.update({ ...record, expiresAt }, 1);
    await waitPast(expiresAt);
    // The record is gone on Redis's clock; an index left behind (it has its own expiry) finds nothing.
    expect(await redis.exists(`${prefix}{${slotOfIntentId(record.id)}}:i:${record.id}`)).toBe(0);
    expect(await payments.get(record.id)).toBeUndefined();
    expect(await payments.findByBinding(bindingKey(record.binding))).toBeUndefined();
    expect(await payments.findByPayment('walleot', 'w_ttl')).toBeUndefined();
  });

  for (const status of ['paid', 'authorized'] as const) {
    it(`keeps ${status === 'paid' ? 'a paid' : 'an authorized'} intent findable by its binding for as long as its record lives`, async () => {
      const redis = client();
      const prefix = freshPrefix();
      const payments = store(redis, prefix);
      // Open with a short life: the binding index is written with it.
      const record = makeRecord({ expiresAt: Date.now() + 300, attempts: [attempt('x402', `v_${status}`)] });
      await payments.insert(record);
      const becomes = await payments.update(
        { ...record, status, expiresAt: Date.now() + 600, updatedAt: Date.now() },
        1,
      );
      // Still `status`, the record's life grows again (a stored result is kept longer).
      const longer = Date.now() + 60_000;
      await payments.update({ ...becomes!, expiresAt: longer, updatedAt: Date.now() }, 2);
      await waitPast(Date.now() + 600);
      expect(await payments.get(record.id)).toMatchObject({ status, version: 3 });
      expect(await payments.findByBinding(bindingKey(record.binding))).toMatchObject({
        id: record.id,
        status,
      });
      const index = `${prefix}{${slotOfIntentId(record.id)}}:b:${bindingKey(record.binding)}`;
      expect(await redis.pttl(index)).toBeGreaterThan(30_000);
    });
  }

  it('keeps every key of one subject in one hash slot, and ids carry the slot', async () => {
    const redis = client();
    const prefix = freshPrefix();
    const payments = store(redis, prefix);
    const subject = `slotted ${randomUUID()}`;
    const base = makeRecord();
    const records = [0, 1, 2].map((i) =>
      makeRecord({ binding: { ...base.binding, subject, argsHash: `h${i}` } }),
    );
    for (const r of records)
      await payments.insert(r, { limits: { openPerSubject: 5, openArgumentBytesPerSubject: 10_000 } });
    await payments.acquireLease(records[0]!.id, 'runner', 60_000);
    await payments.setChoice(subject, 'stripe', 60_000);
    const keys = await redis.keys(`${prefix}{*`);
    const tags = new Set(keys.map((k) => /\{([^}]*)\}/.exec(k)?.[1]));
    expect(keys.length).toBeGreaterThanOrEqual(7);
    expect(tags).toEqual(new Set([subjectSlot(subject)]));
    for (const r of records) expect(slotOfIntentId(r.id)).toBe(subjectSlot(subject));
    // An id not made for its subject cannot be placed: a clear error, nothing stored.
    const stray = makeRecord({ id: newIntentId('someone else') });
    await expect(payments.insert(stray)).rejects.toMatchObject({ code: 'store_invalid_record' });
  });

  it('touches no index an update does not change, and sets no expiry from an instance clock', async () => {
    const redis = client();
    const prefix = freshPrefix();
    const payments = store(redis, prefix);
    const record = makeRecord({ status: 'requires_method' });
    await payments.insert(record);
    const written = await payments.update({ ...record, attempts: [attempt('stripe', 'cs_idx')] }, 1);
    const before = await commandStats(redis);
    await payments.update({ ...written!, description: 'again' }, 2);
    const after = await commandStats(redis);
    const used = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    // One script, one command in it: the record written, its previous value (the version) handed
    // back by the same SET. No index, no expiry (it did not change), no PEXPIREAT.
    expect(used('evalsha')).toBe(1);
    expect(used('get')).toBe(0);
    expect(used('set')).toBe(1);
    expect(used('pexpireat') + used('pexpire') + used('zrem') + used('zadd')).toBe(0);
  });

  it('leaves the record and its expiry as they were when a compare-and-set loses, finds nothing, or cannot read it', async () => {
    const redis = client();
    const prefix = freshPrefix();
    const payments = store(redis, prefix);
    const record = makeRecord({ expiresAt: Date.now() + 600_000 });
    await payments.insert(record);
    const key = `${prefix}{${slotOfIntentId(record.id)}}:i:${record.id}`;
    const stored = await redis.get(key);
    const ttl = await redis.pttl(key);
    // A stale version, with a new expiry: nothing changes.
    expect(await payments.update({ ...record, description: 'late', expiresAt: Date.now() + 60_000 }, 7)).toBe(
      undefined,
    );
    expect(await redis.get(key)).toBe(stored);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(ttl);
    expect(await redis.pttl(key)).toBeGreaterThan(ttl - 30_000);
    // The right version, the same expiry: the same life.
    await payments.update({ ...record, description: 'next' }, 1);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(ttl);
    expect(await redis.pttl(key)).toBeGreaterThan(ttl - 30_000);
    // A new expiry is the key's new life.
    await payments.update({ ...record, description: 'shorter', expiresAt: Date.now() + 60_000 }, 2);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(60_000);
    expect(await redis.pttl(key)).toBeGreaterThan(30_000);
    // No record: none is left behind.
    const missing = makeRecord();
    expect(await payments.update(missing, 1)).toBeUndefined();
    expect(await redis.exists(`${prefix}{${slotOfIntentId(missing.id)}}:i:${missing.id}`)).toBe(0);
    // Unreadable: refused, and the value and its expiry stay.
    const broken = makeRecord();
    const brokenKey = `${prefix}{${slotOfIntentId(broken.id)}}:i:${broken.id}`;
    await redis.set(brokenKey, '{"version": ', 'PX', 600_000);
    await expect(payments.update(broken, 1)).rejects.toMatchObject({ code: 'store_corrupt' });
    expect(await redis.get(brokenKey)).toBe('{"version": ');
    expect(await redis.pttl(brokenKey)).toBeGreaterThan(30_000);
    await redis.del(brokenKey);
    await redis.hset(brokenKey, 'version', '1');
    await expect(payments.update(broken, 1)).rejects.toMatchObject({ code: 'store_corrupt' });
    expect(await redis.hget(brokenKey, 'version')).toBe('1');
  });

  it("keeps a payer's newest 10,000 ledger entries (plus what came since the last trim), oldest dropped first", async () => {
    const redis = client();
    const s = store(redis, freshPrefix()) as PaymentStore & {
      appendLedger(e: unknown, retentionMs: number): Promise<boolean>;
      listLedger(subject: string, since: number, limit: number): Promise<Array<{ id: string }>>;
    };
    const at = Date.now();
    const entry = (n: number) => ({
      id: `pay_x:payment:${n}`,
      at: at + n,
      subject: 'session:busy',
      kind: 'payment',
      intentId: 'pay_x',
      tool: 'work',
      amount: 5,
      currency: 'USD',
      receipt: 'rcpt_x',
    });
    // One session opening payment after payment: one entry each, all within retention.
    for (let n = 0; n < 10_100; n += 100)
      await Promise.all(Array.from({ length: 100 }, (_, i) => s.appendLedger(entry(n + i), 60_000)));
    const kept = await s.listLedger('session:busy', 0, 20_000);
    expect(kept.length).toBeGreaterThanOrEqual(10_000);
    expect(kept.length).toBeLessThanOrEqual(10_000 + 32);
    expect(kept.at(-1)?.id).toBe('pay_x:payment:10099');
    expect(kept[0]?.id).not.toBe('pay_x:payment:0');
  });

  type LedgerStore = PaymentStore & {
    appendLedger(e: unknown, retentionMs: number): Promise<boolean>;
    listLedger(subject: string, since: number, limit: number): Promise<Array<{ id: string; at: number }>>;
  };
  const ledgerEntry = (subject: string, id: string, at = Date.now()) => ({
    id,
    at,
    subject,
    kind: 'paid',
    intentId: 'pay_x',
    tool: 'work',
    amount: 5,
    currency: 'USD',
  });

  it("stretches a ledger key's life once per store while entries come, not once per entry", async () => {
    const prefix = freshPrefix();
    const redis = client();
    const [a, b] = [store(redis, prefix), store(client(), prefix)] as LedgerStore[];
    const retention = 90 * 24 * 3_600_000;
    const before = await commandStats(redis);
    for (let n = 0; n < 20; n++) {
      await a!.appendLedger(ledgerEntry('user:steady', `a:${n}`), retention);
      await b!.appendLedger(ledgerEntry('user:steady', `b:${n}`), retention);
    }
    const after = await commandStats(redis);
    const used = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    expect(used('zadd')).toBe(40);
    expect(used('pexpire')).toBe(2);
    expect(await a!.listLedger('user:steady', 0, 100)).toHaveLength(40);
    const [key] = await redis.keys(`${prefix}*lg:*`);
    // Retention plus at most an hour.
    const ttl = await redis.pttl(key!);
    expect(ttl).toBeGreaterThan(retention);
    expect(ttl).toBeLessThanOrEqual(retention + 3_600_000);
  });

  it('keeps every ledger entry at least its retention after it was written, written by two stores, and lets it go after', async () => {
    const prefix = freshPrefix();
    const redis = client();
    const stores = [store(redis, prefix), store(client(), prefix)] as LedgerStore[];
    const subject = 'user:short';
    const retention = 300;
    /** Each entry, with when its append was sent (it was written then or later). */
    const written: Array<{ id: string; sentAt: number }> = [];
    const before = await commandStats(redis);
    const started = Date.now();
    for (let n = 0; Date.now() - started < 2500; n++) {
      // Bursts, then a pause longer than the key's whole life (it expires meanwhile).
      if (n === 40) await sleep(retention * 3);
      const id = `e:${n}`;
      const sentAt = Date.now();
      await stores[n % 2]!.appendLedger(ledgerEntry(subject, id, sentAt), retention);
      written.push({ id, sentAt });
      await sleep(5 + ((n * 37) % 40));
      const listed = new Set((await stores[(n + 1) % 2]!.listLedger(subject, 0, 10_000)).map((e) => e.id));
      const listedBy = Date.now();
      // Written less than `retention` before the list was read: still there.
      const owed = written.filter((w) => w.sentAt >= listedBy - retention).map((w) => w.id);
      expect(owed.filter((id) => !listed.has(id))).toEqual([]);
    }
    const after = await commandStats(redis);
    const used = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    expect(used('zadd')).toBeGreaterThanOrEqual(written.length);
    expect(used('pexpire')).toBeLessThan(written.length / 2);
    // Past retention they go: dropped by score on a later append, or with the key.
    await sleep(retention + 50);
    const fresh = Date.now();
    for (let n = 0; n < 32; n++) await stores[0]!.appendLedger(ledgerEntry(subject, `f:${n}`), retention);
    const left = await stores[1]!.listLedger(subject, 0, 10_000);
    expect(left.filter((e) => e.at < fresh - retention)).toEqual([]);
    expect(left.filter((e) => e.id.startsWith('f:'))).toHaveLength(32);
    await waitPast(Date.now() + 2 * retention + 50);
    expect(await redis.keys(`${prefix}*lg:*`)).toEqual([]);
  });

  it("looks a new payment's binding up in one command, the payer's remembered method and a 0.1 binding with it", async () => {
    const redis = client();
    const prefix = freshPrefix();
    const payments = store(redis, prefix);
    const record = makeRecord();
    await payments.setChoice(record.binding.subject, 'stripe', 60_000);
    const before = await commandStats(redis);
    expect(await payments.findByBinding(bindingKey(record.binding))).toBeUndefined();
    expect(await payments.getChoice(record.binding.subject)).toBe('stripe');
    const after = await commandStats(redis);
    const used = [...after].filter(([name, n]) => name !== 'info' && n !== (before.get(name) ?? 0));
    expect(used).toEqual([['mget', (before.get('mget') ?? 0) + 1]]);
    // Its copy of the choice is used once, and never over this store's own later choice.
    expect(await payments.findByBinding(bindingKey(record.binding))).toBeUndefined();
    await payments.setChoice(record.binding.subject, 'walleot', 60_000);
    expect(await payments.getChoice(record.binding.subject)).toBe('walleot');
    // A look-up under way while this store sets a choice keeps no copy of the older one.
    const lookup = payments.findByBinding(bindingKey(record.binding));
    await payments.setChoice(record.binding.subject, 'stripe', 60_000);
    await lookup;
    expect(await payments.getChoice(record.binding.subject)).toBe('stripe');
    const other = store(client(), prefix);
    expect(await payments.findByBinding(bindingKey(record.binding))).toBeUndefined();
    await other.setChoice(record.binding.subject, 'x402', 60_000);
    await payments.getChoice(record.binding.subject);
    expect(await payments.getChoice(record.binding.subject)).toBe('x402');
    // Found: the record is read by its id.
    await payments.insert(record);
    expect(await payments.findByBinding(bindingKey(record.binding))).toMatchObject({ id: record.id });
  });

  it('reads no 0.1 binding keys over a Redis Cluster, where 0.1 could not write them', async () => {
    const prefix = freshPrefix();
    const redis = client();
    const record = makeRecord({ id: 'pay_legacyLookup0001' });
    await redis.set(`${prefix}intent:${record.id}`, JSON.stringify(record), 'PX', 60_000);
    await redis.set(`${prefix}binding:${bindingKey(record.binding)}`, record.id, 'PX', 60_000);
    expect(await store(redis, prefix).findByBinding(bindingKey(record.binding))).toMatchObject({
      id: record.id,
    });
    // 0.1's scripts wrote keys of several hash slots at once: a Cluster refused every one of them.
    const clustered = client();
    Object.defineProperty(clustered, 'isCluster', { value: true });
    expect(await store(clustered, prefix).findByBinding(bindingKey(record.binding))).toBeUndefined();
  });

  it('runs its scripts again after Redis forgot them', async () => {
    const redis = client();
    const payments = store(redis, freshPrefix());
    const record = makeRecord();
    await payments.insert(record);
    await redis.script('FLUSH');
    expect(await payments.update({ ...record, status: 'paid' }, 1)).toMatchObject({ version: 2 });
    await redis.script('FLUSH');
    expect(await payments.insert(makeRecord())).toEqual({ kind: 'inserted' });
  });

  it('ignores malformed pub/sub messages and tells the logger', async () => {
    const redis = client();
    const prefix = freshPrefix();
    const warnings: string[] = [];
    const payments = redisStore({
      client: redis,
      prefix,
      logger: { debug() {}, info() {}, warn: (message) => warnings.push(message), error() {} },
    });
    opened.stores.push(payments);
    const seen = recorder(payments);
    await untilSubscribed(payments, [payments]);

    await redis.publish(`${prefix}status`, 'not json');
    await redis.publish(`${prefix}status`, JSON.stringify({ intentId: 'pi_x', status: 'bogus', version: 1 }));
    await payments.publish({ intentId: 'pi_ok', status: 'paid', version: 2 });
    await eventually(() => seen.of('pi_ok').length === 1, 'the valid message');
    expect(seen.of('pi_x')).toEqual([]);
    expect(warnings).toEqual([
      'redisStore: ignoring a status message that is not JSON',
      'redisStore: ignoring a malformed status message',
    ]);
  });

  it('closes only the subscriber connection it created, never the given client', async () => {
    const name = `close-${randomUUID()}`;
    const redis = client({ connectionName: name });
    const payments = store(redis, freshPrefix());
    const subscriberConnections = async () =>
      ((await redis.client('LIST')) as string)
        .split('\n')
        .filter((line) => line.includes(` name=${name}:subscriber `)).length;

    payments.subscribe(() => {});
    await untilSubscribed(payments, [payments]);
    expect(await subscriberConnections()).toBe(1);

    await payments.close();
    await eventually(async () => (await subscriberConnections()) === 0, 'the subscriber to disconnect');
    expect(await redis.ping()).toBe('PONG');
    expect(redis.status).toBe('ready');
  });

  it('creates no connection of its own until something subscribes', async () => {
    const name = `lazy-${randomUUID()}`;
    const redis = client({ connectionName: name });
    const payments = store(redis, freshPrefix());
    await payments.insert(makeRecord());
    await payments.publish({ intentId: 'pi_1', status: 'paid', version: 2 });
    const list = (await redis.client('LIST')) as string;
    expect(list.split('\n').filter((line) => line.includes(` name=${name}`))).toHaveLength(1);
  });

  it('turns an unreachable Redis into a store_unavailable error', async () => {
    const offline = new Redis({
      port: server.port,
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    const payments = redisStore({ client: offline });
    await expect(payments.get('pi_1')).rejects.toMatchObject({ code: 'store_unavailable' });
    await expect(payments.insert(makeRecord())).rejects.toMatchObject({ code: 'store_unavailable' });
    await payments.close();
    offline.disconnect();
  });

  it('refuses to start without an ioredis client', () => {
    expect(() => redisStore({} as never)).toThrow(expect.objectContaining({ code: 'config_error' }));
  });
});
