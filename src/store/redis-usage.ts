import { z } from 'zod';
import { subjectSlot } from '../core/ids.js';
import type { RedisClient } from './redis-client.js';
import { LuaScript } from './redis-scripts.js';
import type { LedgerEntry, UsageOutcome, UsageReservation, UsageStore } from './types.js';

/** Entries one payer keeps in a redisStore's ledger at most, oldest dropped first (trimmed every 32nd append). */
const LEDGER_PER_SUBJECT = 10_000;
/** How much longer than its retention a ledger key is kept at most (less when the retention is shorter). */
const LEDGER_MARGIN_MS = 3_600_000;
/** Ledger keys whose last PEXPIRE one store remembers. */
const LEDGER_EXTENDED_MAX = 10_000;

/**
 * Reserve on every counter of one scope or on none, in the scope's hash slot.
 * KEYS[1] the reservation's record, KEYS[2..] its counters (fixed: a string per period; rolling: a
 * sorted set of `<add>:<id>` scored by time). ARGV[1] the reservation's time, ARGV[2] what it adds
 * (JSON, for release), ARGV[3] how long to keep that, ARGV[4] its id, then per counter: kind
 * (`f`/`r`), add, limit, span (fixed: ms left in the period; rolling: the window).
 * Returns {1} reserved (or already held), {0, counter index, used, limit, resets at}.
 */
const reserveScript = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return {1} end
local at = tonumber(ARGV[1])
local n = #KEYS - 1
for i = 1, n do
  local b = 4 + (i - 1) * 4
  local kind, add, limit, span = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  local key = KEYS[i + 1]
  local used = 0
  local resets = at + span
  if kind == 'f' then
    used = tonumber(redis.call('GET', key) or '0')
  else
    redis.call('ZREMRANGEBYSCORE', key, '-inf', at - span)
    local members = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    for j = 1, #members, 2 do
      used = used + tonumber(string.match(members[j], '^(%d+):'))
      if j == 1 then resets = tonumber(members[j + 1]) + span end
    end
  end
  if used + add > limit then return {0, i, used, limit, resets} end
end
for i = 1, n do
  local b = 4 + (i - 1) * 4
  local kind, add, span = ARGV[b + 1], tonumber(ARGV[b + 2]), math.max(1, tonumber(ARGV[b + 4]))
  local key = KEYS[i + 1]
  if kind == 'f' then
    redis.call('INCRBY', key, add)
  else
    redis.call('ZADD', key, at, add .. ':' .. ARGV[4])
  end
  redis.call('PEXPIRE', key, span)
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1}
`);

/**
 * Give a reservation back once. KEYS[1] its record (JSON `[[kind, key, add], ...]`, keys of the
 * same slot); ARGV[1] its id. Returns 1 the first time, 0 after.
 */
const releaseScript = new LuaScript(`
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
redis.call('DEL', KEYS[1])
for _, c in ipairs(cjson.decode(held)) do
  local kind, key, add = c[1], c[2], tonumber(c[3])
  if kind == 'f' then
    local used = tonumber(redis.call('GET', key) or '-1')
    if used >= 0 then
      local ttl = redis.call('PTTL', key)
      local left = math.max(0, used - add)
      if ttl > 0 then redis.call('SET', key, left, 'PX', ttl) end
    end
  else
    redis.call('ZREM', key, add .. ':' .. ARGV[1])
  end
end
return 1
`);

const ledgerEntrySchema = z.object({
  id: z.string(),
  at: z.number(),
  subject: z.string(),
  kind: z.enum(['payment', 'paid', 'free', 'run', 'refund', 'cancel']),
  intentId: z.string(),
  tool: z.string(),
  amount: z.number().int().nonnegative(),
  currency: z.string(),
  provider: z.string().optional(),
  providerPaymentId: z.string().optional(),
  receipt: z.string().optional(),
  ok: z.boolean().optional(),
  reason: z.string().optional(),
}) satisfies z.ZodType<LedgerEntry>;

/** A pipeline's replies, or its first failure thrown. */
function checkedReplies(replies: Array<[error: Error | null, result: unknown]> | null): unknown[] {
  const failed = replies?.find(([error]) => error !== null)?.[0];
  if (failed) throw failed;
  return (replies ?? []).map(([, result]) => result);
}

/** Usage counters and the ledger of a redisStore: every key in its scope's (subject's) hash slot. */
export class RedisUsage implements UsageStore {
  #appends = 0;
  /** Ledger keys this store stretched lately: when (performance.now(), before sending) and to what ttl. */
  readonly #extended = new Map<string, { at: number; ttl: number }>();
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    private readonly command: <T>(operation: string, run: () => Promise<T>) => Promise<T>,
  ) {}

  async reserveUsage(r: UsageReservation): Promise<UsageOutcome> {
    const base = this.#base(r.scope);
    // The scope is part of every key: payers whose ids share a hash slot share no counter.
    const scope = encodeURIComponent(r.scope);
    const keys = [`${base}uh:${scope}:${encodeURIComponent(r.id)}`];
    const args: (string | number)[] = [];
    const held: Array<[string, string, number]> = [];
    let keepMs = 1;
    for (const c of r.counters) {
      const fixed = c.window.kind === 'fixed';
      const key = fixed
        ? `${base}uf:${scope}:${encodeURIComponent(c.key)}:${c.window.kind === 'fixed' ? c.window.start : 0}`
        : `${base}ur:${scope}:${encodeURIComponent(c.key)}`;
      const span = c.window.kind === 'fixed' ? Math.max(1, c.window.end - r.at) : c.window.ms;
      keys.push(key);
      args.push(fixed ? 'f' : 'r', c.add, c.limit, span);
      held.push([fixed ? 'f' : 'r', key, c.add]);
      keepMs = Math.max(keepMs, span);
    }
    const reply = await this.command('reserve usage', () =>
      reserveScript.run(this.client, keys, [r.at, JSON.stringify(held), keepMs, r.id, ...args]),
    );
    const [code, index, used, limit, resetsAt] = Array.isArray(reply) ? reply.map(Number) : [Number(reply)];
    if (code === 1) return { kind: 'reserved' };
    const counter = r.counters[(index ?? 1) - 1];
    return {
      kind: 'over',
      key: counter?.key ?? '',
      used: used ?? 0,
      limit: limit ?? 0,
      resetsAt: resetsAt ?? r.at,
    };
  }

  async releaseUsage(scope: string, id: string): Promise<boolean> {
    const key = `${this.#base(scope)}uh:${encodeURIComponent(scope)}:${encodeURIComponent(id)}`;
    const reply = await this.command('release usage', () => releaseScript.run(this.client, [key], [id]));
    return Number(reply) === 1;
  }

  /**
   * One ZADD, no script: an entry is written by the one instance whose compare-and-set made it
   * happen, so the store needs no mark of its own. The key's life is stretched (PEXPIRE, retention
   * plus a margin) with the first append this store makes to it, then again only once half the
   * margin has passed: until then the life it set still covers the new entry's retention. Every
   * 32nd append of this store also drops the subject's entries past retention.
   */
  async appendLedger(entry: LedgerEntry, retentionMs: number): Promise<boolean> {
    const key = `${this.#base(entry.subject)}lg:${encodeURIComponent(entry.subject)}`;
    const retention = Math.max(1, Math.ceil(retentionMs));
    const margin = Math.min(retention, LEDGER_MARGIN_MS);
    const ttl = retention + margin;
    const member = JSON.stringify(entry);
    const trim = this.#appends++ % 32 === 31;
    // Monotonic: how long ago this store's PEXPIRE went out, whatever the wall clock does.
    const sentAt = performance.now();
    const last = this.#extended.get(key);
    const extend = last === undefined || last.ttl !== ttl || sentAt - last.at > margin / 2;
    let extendedAt = extend ? sentAt : undefined;
    await this.command('append ledger', async () => {
      let pipeline = this.client.pipeline().zadd(key, entry.at, member);
      if (extend) pipeline = pipeline.pexpire(key, ttl);
      // Past retention, and past the payer's newest LEDGER_PER_SUBJECT (as in memoryStore): one
      // session opening payment after payment must not grow its set for the whole retention.
      if (trim)
        pipeline
          .zremrangebyscore(key, '-inf', entry.at - retention)
          .zremrangebyrank(key, 0, -(LEDGER_PER_SUBJECT + 1));
      const replies = checkedReplies(await pipeline.exec());
      // Without a PEXPIRE, the key's life ends `ttl` after `last.at` at the earliest, which covers
      // the entry only if the ZADD ran within `margin` of then: it ran before this reply. Past that
      // (a stalled command), or when the key expired between ZADD and PEXPIRE (PEXPIRE found
      // nothing), write both again.
      const again = extend ? replies[1] === 0 : performance.now() - (last?.at ?? 0) > margin;
      if (again) {
        extendedAt = performance.now();
        checkedReplies(await this.client.pipeline().zadd(key, entry.at, member).pexpire(key, ttl).exec());
      }
    });
    if (extendedAt !== undefined) {
      this.#extended.delete(key);
      this.#extended.set(key, { at: extendedAt, ttl });
      // Oldest first in a Map: forgetting a key costs one PEXPIRE on its next append, no more.
      if (this.#extended.size > LEDGER_EXTENDED_MAX) {
        const oldest = this.#extended.keys().next().value;
        if (oldest !== undefined) this.#extended.delete(oldest);
      }
    }
    return true;
  }

  async listLedger(subject: string, since: number, limit: number): Promise<LedgerEntry[]> {
    const key = `${this.#base(subject)}lg:${encodeURIComponent(subject)}`;
    const raw = await this.command('list ledger', () =>
      this.client.zrangebyscore(key, since, '+inf', 'LIMIT', 0, limit),
    );
    const entries: LedgerEntry[] = [];
    for (const line of raw) {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        continue;
      }
      const parsed = ledgerEntrySchema.safeParse(value);
      if (parsed.success) entries.push(Object.freeze(parsed.data));
    }
    return entries;
  }

  /** `<prefix>{<slot>}:` of a scope: a subject's own slot, or the slot of `*` for router-wide caps. */
  #base(scope: string): string {
    return `${this.prefix}{${subjectSlot(scope)}}:`;
  }
}
