import { Redis } from 'ioredis';
import { startSandbox } from '../src/sandbox.js';
import { countTwoStepCommands, twoInstances } from '../test/support/redis-commands.js';
import { startRedisServer } from '../test/support/redis-server.js';

const redis = await startRedisServer();
const sandbox = await startSandbox();
const instances = await twoInstances(redis.url, sandbox);
await countTwoStepCommands(redis.url, sandbox, instances, 2);
const mon = await new Redis(redis.url).monitor();
const lines: string[] = [];
mon.on('monitor', (_t: string, args: string[], source: string) => {
  lines.push(
    `${source.split(':').pop()} ${args.map((a) => (a.length > 60 ? a.slice(0, 60) + '…' : a)).join(' ')}`,
  );
});
await new Promise((r) => setTimeout(r, 200));
const c = await countTwoStepCommands(redis.url, sandbox, instances, 1);
await new Promise((r) => setTimeout(r, 200));
console.log(c.perCall, JSON.stringify(c.byCommand));
for (const l of lines) console.log(l.replace(/\n/g, ' '));
mon.disconnect();
await instances.close();
await sandbox.close();
await redis.stop();
process.exit(0);
