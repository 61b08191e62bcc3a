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
  it('a two-step paid call over two instances costs at most 32 commands (+6 for the ledger), none of them PEXPIREAT', async () => {
    await countTwoStepCommands(redis.url, sandbox, instances, 1); // scripts loaded
    const count = await countTwoStepCommands(redis.url, sandbox, instances, 5);
    const names = new Map(count.byCommand);
    // Was 60, then 36. The target is 18 (DESIGN.md §6); what stands between is listed in bench/RESULTS.md.
    // The ledger's durable entries (payment, paid, run) cost ZADD + PEXPIRE each.
    expect(count.perCall).toBeLessThanOrEqual(32 + 6);
    expect(names.get('pexpireat')).toBeUndefined();
    // One payment-index write per provider payment, not one per update.
    expect(names.get('set')).toBeLessThanOrEqual(8);
  });
});
