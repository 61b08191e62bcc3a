// Redis commands per two-step paid call over two router instances sharing one redis-server,
// counted by Redis itself (`INFO commandstats`: Lua's inner calls included), default limits on.
// Run: node --import tsx bench/redis-commands.ts
import { startSandbox } from '../src/sandbox.js';
import { countTwoStepCommands, twoInstances } from '../test/support/redis-commands.js';
import { startRedisServer } from '../test/support/redis-server.js';
import { type BenchSection, runIfMain, table } from './support/section.js';

const CALLS = 40;
const TARGET = 18;

export async function redisCommands(): Promise<BenchSection> {
  const redis = await startRedisServer();
  const sandbox = await startSandbox();
  const instances = await twoInstances(redis.url, sandbox);
  const withoutLegacy = await twoInstances(redis.url, sandbox, { legacyKeys: false });
  try {
    // Warm-up: script loading (the first EVALSHA of each script falls back to EVAL once).
    await countTwoStepCommands(redis.url, sandbox, instances, 2);
    const count = await countTwoStepCommands(redis.url, sandbox, instances, CALLS);
    await countTwoStepCommands(redis.url, sandbox, withoutLegacy, 2);
    const lean = await countTwoStepCommands(redis.url, sandbox, withoutLegacy, CALLS);
    const rows = count.byCommand.map(([name, n]) => [name, n.toFixed(2)]);
    const markdown = [
      `${CALLS} two-step paid calls, each by its own user: the tool call on instance A (Stripe stand-in,`,
      'Checkout Session created, payment-required result), the user pays, `confirm_payment` on instance B',
      "runs the tool. Two ioredis clients (one per instance, plus each instance's subscriber connection),",
      "`CONFIG RESETSTAT` before, `INFO commandstats` after; the measurement's own commands left out.",
      '',
      table(['command', 'per paid call'], rows),
      '',
      `- Redis commands per two-step paid call, all instances, default limits on: **${count.perCall.toFixed(2)}** (target ≤ ${TARGET}).`,
      `- Same with \`redisStore({ legacyKeys: false })\` (no look-up of 0.1 binding keys when a payment opens; with them on, the old key is read in the same MGET as the new one): ${lean.perCall.toFixed(2)}.`,
    ].join('\n');
    return {
      title: 'Redis commands per paid call',
      command: 'node --import tsx bench/redis-commands.ts',
      markdown,
      metrics: { perCall: count.perCall, perCallWithoutLegacyKeys: lean.perCall, calls: CALLS },
    };
  } finally {
    await Promise.all([instances.close(), withoutLegacy.close()]);
    await sandbox.close();
    await redis.stop();
  }
}

runIfMain(import.meta.url, redisCommands);
