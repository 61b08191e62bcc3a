// Redis commands per paid call, counted by Redis (INFO commandstats, Lua's inner calls included)
// over both instances. A count, not a timing: it guards the store's share of the hot path.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { countTwoStepCommands, type TwoInstances, twoInstances } from './support/redis-commands.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';

let redis: RedisServer;
let sandbox: Sandbox;
let instances: TwoInstances;

beforeAll(async () => {
  redis = await startRedisServer();
  sandbox = await startSandbox();
  instances = await twoInstances(redis.url, sandbox);
});

afterAll(async () => {
  await instances?.close();
  await sandbox?.close();
  await redis?.stop();
});

describe('Redis commands per paid call', () => {
  it('a two-step paid call over two instances costs at most 26 commands, ledger included, none of them PEXPIREAT', async () => {
    await countTwoStepCommands(redis.url, sandbox, instances, 1); // scripts loaded
    const count = await countTwoStepCommands(redis.url, sandbox, instances, 5);
    const names = new Map(count.byCommand);
    // Was 60, then 36, then 37 with the ledger, 28, then 26 with the run claimed in the write that
    // records paid. The target is 18; what stands between is listed in bench/RESULTS.md.
    expect(count.perCall).toBeLessThanOrEqual(26);
    expect(names.get('pexpireat')).toBeUndefined();
    // One payment-index write per provider payment, not one per update.
    expect(names.get('set')).toBeLessThanOrEqual(7);
    // Insert, attempt recorded, paid with the run claimed, result: four scripts.
    expect(names.get('evalsha')).toBeLessThanOrEqual(4);
    // The binding look-up is one MGET; confirm_payment reads the intent once; each compare-and-set
    // is one SET (no GET before it).
    expect(names.get('mget')).toBeLessThanOrEqual(1);
    expect(names.get('get')).toBeLessThanOrEqual(1);
    // The ledger's key is stretched once per instance that writes to it, not once per entry.
    expect(names.get('zadd')).toBe(4);
    expect(names.get('pexpire')).toBeLessThanOrEqual(4);
  });
});
