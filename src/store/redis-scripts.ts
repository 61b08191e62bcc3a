import { createHash } from 'node:crypto';
import type { RedisClient } from './redis-client.js';

/**
 * A Lua script run with EVALSHA, falling back to EVAL (which also caches it) after the server
 * forgot it (restart, SCRIPT FLUSH). Unlike `defineCommand` this adds nothing to the user's client.
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(
    client: RedisClient,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/** Error reply prefix the scripts use for a stored value they cannot read. */
export const CORRUPT_REPLY = 'PAYROUTER_CORRUPT';

/** Lua: the Redis server's clock in ms (TIME), so expiries never depend on an instance's clock. */
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Lua: whether a status counts as open (unpaid, waiting), as `isOpenStatus` decides. */
const IS_OPEN = `local function is_open(s) return s == 'requires_method' or s == 'pending' or s == 'unknown' end`;

/**
 * Insert a record unless its id exists, index it, and count it against its subject's open
 * intents, all in the subject's hash slot. Expiries are relative (`PX`), so Redis's own clock
 * ends them.
 * KEYS[1] record, KEYS[2] binding index, KEYS[3] the subject's open set (member `<bytes>:<id>`,
 * scored by expiry on the Redis clock).
 * ARGV[1] record JSON, ARGV[2] ttl ms, ARGV[3] intent id, ARGV[4] '1' to require that the binding
 * index still points at ARGV[5] ('' for no live intent; an owner whose record key, ARGV[6] ..
 * owner, is gone counts as none), ARGV[7] '1' when the record is open (counted), ARGV[8] open
 * intents allowed ('' for no limit), ARGV[9] argument bytes allowed, ARGV[10] this record's
 * argument bytes, ARGV[11] its member in the open set, ARGV[12] how long it counts as open (ms).
 * Returns {1} inserted, {0} id exists or binding moved on, {2, open, bytes, limit} over the open
 * limit, {3, open, bytes, limit} over the bytes limit.
 */
export const insertScript = new LuaScript(`
local ttl = tonumber(ARGV[2])
-- Whether this script has already pointed the binding index at the new intent.
local bound = false
if ARGV[4] == '1' then
  if ARGV[5] == '' then
    -- Expected free: take the index outright when it is (the common case, one command).
    if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ttl) then
      bound = true
    else
      local owner = redis.call('GET', KEYS[2])
      if owner and redis.call('EXISTS', ARGV[6] .. owner) == 1 then return {0} end
    end
  else
    local owner = redis.call('GET', KEYS[2])
    if owner and redis.call('EXISTS', ARGV[6] .. owner) == 0 then owner = false end
    if (owner or '') ~= ARGV[5] then return {0} end
  end
end
local function refuse(reply)
  if bound then redis.call('DEL', KEYS[2]) end
  return reply
end
if ARGV[7] == '1' then
  ${NOW_MS}
  local entries = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
  local open, bytes, stale, latest = 0, 0, false, 0
  for i = 1, #entries, 2 do
    local score = tonumber(entries[i + 1])
    if score <= now then
      stale = true
    else
      open = open + 1
      bytes = bytes + (tonumber(string.match(entries[i], '^(%d+):')) or 0)
      if score > latest then latest = score end
    end
  end
  if stale then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) end
  if ARGV[8] ~= '' then
    if open >= tonumber(ARGV[8]) then return refuse({2, open, bytes, tonumber(ARGV[8])}) end
    if bytes + tonumber(ARGV[10]) > tonumber(ARGV[9]) then return refuse({3, open, bytes, tonumber(ARGV[9])}) end
  end
  if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl) then return refuse({0}) end
  local open_ms = tonumber(ARGV[12])
  redis.call('ZADD', KEYS[3], now + open_ms, ARGV[11])
  if now + open_ms > latest then redis.call('PEXPIRE', KEYS[3], open_ms) end
else
  if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl) then return refuse({0}) end
end
if not bound then redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl) end
return {1}
`);

/**
 * Compare-and-set: replace the record only when its stored version equals the expected one.
 * The record is written first, with its life, and its previous value handed back by the same
 * command (`SET … PX … GET`): the common case, a matching version, costs one command. A mismatch,
 * a missing record or an unreadable one puts back what was there (the script is atomic: nobody
 * sees the attempt), a record with the life its own expiry gives it, measured as this write
 * measured its own (the writer's clock, as every write's `PX` is).
 * Indexes are touched only when they change: an intent that stops being open leaves its
 * subject's open set; a paid or authorized one stretches its binding index to its own expiry
 * whenever it becomes so or its expiry grows, so the index lives as long as the record (a retry
 * must find an intent that is still owed its run or its settlement). Provider-payment indexes live in
 * other slots and are written by the caller for the attempts this reports as new.
 * KEYS[1] record, KEYS[2] the subject's open set, KEYS[3] binding index.
 * ARGV[1] expected version, ARGV[2] new record JSON, ARGV[3] ttl ms, ARGV[4] new status,
 * ARGV[5] member in the open set, ARGV[6] '1' when the new record is already expired (deleted),
 * ARGV[7] the new record's expiresAt, ARGV[8] the writer's time its ttl was measured from.
 * Returns {1, attempts before} when written, {0} on a version conflict or a missing record.
 */
export const compareAndSetScript = new LuaScript(`
${IS_OPEN}
-- A key of another type is refused by SET itself (WRONGTYPE), unchanged.
local current = redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3], 'GET')
if not current then
  redis.call('DEL', KEYS[1])
  return {0}
end
local ok, decoded = pcall(cjson.decode, current)
local readable = ok and type(decoded) == 'table' and type(decoded['version']) == 'number'
if not readable or decoded['version'] ~= tonumber(ARGV[1]) then
  -- Put back: the old record's life is its expiry less the writer's time.
  local left = tonumber(ARGV[3])
  if readable and type(decoded['expiresAt']) == 'number' then
    left = math.max(1, decoded['expiresAt'] - tonumber(ARGV[8]))
  end
  redis.call('SET', KEYS[1], current, 'PX', left)
  if not readable then return redis.error_reply('${CORRUPT_REPLY} stored record has no readable version') end
  return {0}
end
local before = type(decoded['attempts']) == 'table' and #decoded['attempts'] or 0
local was_open = is_open(decoded['status'])
if ARGV[6] == '1' then
  redis.call('DEL', KEYS[1])
  if was_open then redis.call('ZREM', KEYS[2], ARGV[5]) end
  return {1, before}
end
if was_open and not is_open(ARGV[4]) then redis.call('ZREM', KEYS[2], ARGV[5]) end
if (ARGV[4] == 'paid' or ARGV[4] == 'authorized')
  and (decoded['status'] ~= ARGV[4] or tonumber(ARGV[7]) > (tonumber(decoded['expiresAt']) or 0)) then
  redis.call('PEXPIRE', KEYS[3], ARGV[3], 'GT')
end
return {1, before}
`);

/**
 * Compare-and-set of a record written by versions before 0.2 (key `<prefix>intent:<id>`, no slot
 * tag): it stays under its old key until it expires; only the record is rewritten.
 * KEYS[1] record. ARGV[1] expected version, ARGV[2] JSON, ARGV[3] ttl ms, ARGV[4] '1' when expired.
 */
export const legacyCompareAndSetScript = new LuaScript(`
local current = redis.call('GET', KEYS[1])
if not current then return {0} end
local ok, decoded = pcall(cjson.decode, current)
if not ok or type(decoded) ~= 'table' or type(decoded['version']) ~= 'number' then
  return redis.error_reply('${CORRUPT_REPLY} stored record has no readable version')
end
if decoded['version'] ~= tonumber(ARGV[1]) then return {0} end
local before = type(decoded['attempts']) == 'table' and #decoded['attempts'] or 0
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return {1, before}
`);

/**
 * A run lease someone holds (the plain `SET NX PX` failed): the same owner renews it, anyone
 * else learns how long it lasts. KEYS[1] lease. ARGV[1] owner, ARGV[2] lease ms.
 * Returns -1 when acquired (renewed), else the ms left (-2: it just ran out, try again).
 */
export const leaseHeldScript = new LuaScript(`
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return -1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return -1
end
return redis.call('PTTL', KEYS[1])
`);

/** Renew a run lease on the Redis clock if the owner still holds it. KEYS[1] lease. ARGV[1] owner, ARGV[2] ms. */
export const renewLeaseScript = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`);

/** Give a run lease back if the owner still holds it. KEYS[1] lease. ARGV[1] owner. */
export const releaseLeaseScript = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`);
