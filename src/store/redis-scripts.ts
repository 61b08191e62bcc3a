import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A Lua script run with EVALSHA, falling back to EVAL (which also caches it) after the server
 * forgot it (restart, SCRIPT FLUSH). Unlike `defineCommand` this adds nothing to the user's client.
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
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

/**
 * Insert a record unless its id exists, and index it.
 * KEYS[1] record, KEYS[2] binding index, KEYS[3..] provider-payment index.
 * ARGV[1] record JSON, ARGV[2] expiry (ms epoch), ARGV[3] intent id, ARGV[4] '1' when already expired.
 * ARGV[5] '1' to require that the binding index (KEYS[2]) still points at ARGV[6] ('' for no live
 * intent; an owner whose record key, ARGV[7] .. owner, is gone counts as none).
 * Returns 1 when inserted, 0 when the id exists or the binding moved on.
 */
export const insertScript = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[5] == '1' then
  local owner = redis.call('GET', KEYS[2])
  if owner and redis.call('EXISTS', ARGV[7] .. owner) == 0 then owner = false end
  if (owner or '') ~= ARGV[6] then return 0 end
end
if ARGV[4] == '1' then return 1 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[3])
  redis.call('PEXPIREAT', KEYS[i], ARGV[2])
end
return 1
`);

/**
 * Compare-and-set: replace the record only when its stored version equals the expected one,
 * then refresh its indexes to the record's expiry. The binding index is taken over only when it
 * is free or already ours: a newer intent for the same binding keeps it.
 * KEYS[1] record, KEYS[2] binding index, KEYS[3..] provider-payment index.
 * ARGV[1] expected version, ARGV[2] new record JSON, ARGV[3] expiry (ms epoch), ARGV[4] intent id,
 * ARGV[5] '1' when the new record is already expired (it is deleted instead).
 * Returns 1 when written, 0 on a version conflict or a missing record.
 */
export const compareAndSetScript = new LuaScript(`
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local ok, decoded = pcall(cjson.decode, current)
if not ok or type(decoded) ~= 'table' or type(decoded['version']) ~= 'number' then
  return redis.error_reply('${CORRUPT_REPLY} stored record has no readable version')
end
if decoded['version'] ~= tonumber(ARGV[1]) then return 0 end
if ARGV[5] == '1' then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
local owner = redis.call('GET', KEYS[2])
if (not owner) or owner == ARGV[4] then
  redis.call('SET', KEYS[2], ARGV[4])
  redis.call('PEXPIREAT', KEYS[2], ARGV[3])
end
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], ARGV[4])
  redis.call('PEXPIREAT', KEYS[i], ARGV[3])
end
return 1
`);
