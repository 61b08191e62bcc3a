import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface RedisServer {
  port: number;
  url: string;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;
const NOT_INSTALLED = 'redis-server not found: install it with `apt-get install redis-server`';

/**
 * Starts a throwaway redis-server on a free local port (no persistence, in a temp dir) and waits
 * until it answers: INFO rather than PING, as its pid proves the server answering is ours.
 * A missing binary is an error, never a skip.
 */
export async function startRedisServer(): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt += 1) {
    const port = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'payrouter-redis-'));
    try {
      const child = await launch(port, dir);
      return {
        port,
        url: `redis://${HOST}:${port}`,
        async stop() {
          await killRedis(child);
          await rm(dir, { recursive: true, force: true });
        },
      };
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      if (error instanceof Error && error.message === NOT_INSTALLED) throw error;
      // Most likely another process took the port between our probe and redis binding it.
      lastError = error;
    }
  }
  throw new Error(`redis-server did not start after ${START_ATTEMPTS} attempts`, { cause: lastError });
}

export interface RedisCluster {
  /** The nodes, each a master of a third of the hash slots. */
  nodes: Array<{ host: string; port: number }>;
  stop(): Promise<void>;
}

const CLUSTER_SLOTS = 16_384;

/**
 * Three throwaway redis-servers in cluster mode, each the master of a third of the slots, joined
 * with CLUSTER ADDSLOTSRANGE and CLUSTER MEET (no redis-cli), ready once every node reports
 * `cluster_state:ok`.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  const started: Array<{ child: ChildProcess; dir: string; port: number }> = [];
  const stop = async () => {
    await Promise.all(started.map((n) => killRedis(n.child)));
    await Promise.all(started.map((n) => rm(n.dir, { recursive: true, force: true })));
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const dir = await mkdtemp(join(tmpdir(), 'payrouter-redis-cluster-'));
      const child = await launch(port, dir, [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, 'nodes.conf'),
        '--cluster-node-timeout',
        '5000',
      ]);
      started.push({ child, dir, port });
    }
    const per = Math.ceil(CLUSTER_SLOTS / started.length);
    for (const [i, node] of started.entries()) {
      const last = Math.min(CLUSTER_SLOTS, (i + 1) * per) - 1;
      await command(node.port, ['CLUSTER', 'ADDSLOTSRANGE', String(i * per), String(last)]);
    }
    for (const node of started.slice(1))
      await command(started[0]!.port, ['CLUSTER', 'MEET', HOST, String(node.port)]);
    const deadline = Date.now() + READY_TIMEOUT_MS * 3;
    for (;;) {
      const states = await Promise.all(started.map((n) => command(n.port, ['CLUSTER', 'INFO'])));
      if (states.every((info) => info.includes('cluster_state:ok'))) break;
      if (Date.now() > deadline) throw new Error(`redis cluster did not become ready: ${states.join(' | ')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes: started.map((n) => ({ host: HOST, port: n.port })), stop };
}

/** One command on a short-lived ioredis connection to one node; its reply as text. */
async function command(port: number, args: string[]): Promise<string> {
  const node = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await node.connect();
    const [name, ...rest] = args as [string, ...string[]];
    return String(await node.call(name, ...rest));
  } finally {
    node.disconnect();
  }
}

/** SIGTERM, then wait for the process to exit (SIGKILL if it will not). */
export async function killRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
  force.unref();
  await exited;
  clearTimeout(force);
}

/** A port that was free a moment ago: bind port 0, read the port, release it. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

async function launch(port: number, dir: string, extra: string[] = []): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir, ...extra],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // The tail of redis's own log, to explain an early exit (e.g. "Address already in use").
  let output = '';
  const keepTail = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  };
  child.stdout?.on('data', keepTail);
  child.stderr?.on('data', keepTail);

  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'ENOENT' ? new Error(NOT_INSTALLED) : error);
    });
    child.once('exit', (code, signal) => {
      reject(new Error(`redis-server exited early (code ${code}, signal ${signal}): ${output.trim()}`));
    });
  });
  failed.catch(() => {}); // only observed through the race below

  const stopWaiting = new AbortController();
  try {
    await Promise.race([waitUntilServing(port, child, stopWaiting.signal), failed]);
  } catch (error) {
    await killRedis(child);
    throw error;
  } finally {
    stopWaiting.abort();
  }
  return child;
}

/**
 * Waits until the server on `port` answers and is our child: if another process held the port,
 * our redis exits while the other one might still answer PING, so the pid must match too.
 */
async function waitUntilServing(port: number, child: ChildProcess, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline && !signal.aborted) {
    const pid = await serverPid(port);
    if (pid !== undefined && pid === child.pid) return;
    if (pid !== undefined) throw new Error(`port ${port} is served by another redis (pid ${pid})`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`redis-server on port ${port} did not answer within ${READY_TIMEOUT_MS} ms`);
}

/** The process id reported by INFO server, or undefined while nothing answers. */
function serverPid(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: HOST, port });
    let reply = '';
    const done = (pid: number | undefined) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(1_000, () => done(undefined));
    socket.once('error', () => done(undefined));
    socket.once('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.startsWith('-')) return done(undefined); // e.g. LOADING: not ready yet
      const match = /process_id:(\d+)\r\n/.exec(reply);
      if (match?.[1] !== undefined) done(Number(match[1]));
    });
  });
}
