// Processes of examples/stateless-v2.ts (through test/fixtures/v2-instance.ts) sharing this test's
// sandbox and redis-server. No vitest imports: plain helpers.
import { type ChildProcess, spawn } from 'node:child_process';
import { z } from 'zod';
import { endpointsToEnv, type SandboxEndpoints, waitUntil } from './instances.js';

export interface V2Instance {
  name: string;
  url: string;
  child: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

const readySchema = z.object({ url: z.string() });

export async function spawnV2Instance(options: {
  name: string;
  redisUrl: string;
  requestStateKey: string;
  sandbox: SandboxEndpoints;
}): Promise<V2Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/v2-instance.ts'], {
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      INSTANCE_NAME: options.name,
      REDIS_URL: options.redisUrl,
      REQUEST_STATE_KEY: options.requestStateKey,
      ...endpointsToEnv(options.sandbox),
    },
    // The child exits when its stdin closes: it cannot outlive this process.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const exited = new Promise<void>((resolve) => {
    if (gone()) resolve();
    else child.once('exit', () => resolve());
  });
  const stop = async () => {
    if (!gone()) child.kill('SIGTERM');
    await exited;
  };
  try {
    await waitUntil(
      () => {
        if (gone()) throw new Error(`v2 instance ${options.name} exited early:\n${stderr}`);
        return stdout.includes('\n') && stdout.startsWith('ready ');
      },
      `v2 instance ${options.name} to serve`,
      30_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const line = stdout.split('\n')[0] ?? '';
  const { url } = readySchema.parse(JSON.parse(line.slice('ready '.length)));
  return { name: options.name, url, child, stderr: () => stderr, stop };
}
