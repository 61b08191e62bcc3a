// One router instance as a deployment runs it: its own PayRouter and Streamable HTTP server
// (stateful sessions, a fresh McpServer per session) plus router.httpHandler() at /payrouter, on
// 127.0.0.1 port 0, with a redisStore over its own ioredis client. Used in-process by
// test/scale-out.test.ts and test/crash-recovery.test.ts, and in a child process by
// test/fixtures/instance.ts. No vitest imports here: the child process loads this file too.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  type CallToolResult,
  type ElicitRequest,
  ElicitRequestSchema,
  type ElicitResult,
  isInitializeRequest,
} from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { type Logger, PayRouter, type PayRouterOptions, redisStore, silentLogger } from '../../src/index.js';
import { StripeProvider, WalleotProvider } from '../../src/providers.js';
import type { Sandbox } from '../../src/sandbox.js';
import type { PaymentStore } from '../../src/store/types.js';
import { capabilitiesFor, type Elicitation } from './paid-server.js';

/** Where the sandbox stand-ins listen: enough to build providers in this or another process. */
export interface SandboxEndpoints {
  stripePort: number;
  stripeApiKey: string;
  stripeWebhookSecret: string;
  walleotBaseUrl: string;
  walleotApiKey: string;
}

export function endpointsOf(sandbox: Sandbox): SandboxEndpoints {
  return {
    stripePort: sandbox.stripe.port,
    stripeApiKey: sandbox.stripe.apiKey,
    stripeWebhookSecret: sandbox.stripe.webhookSecret,
    walleotBaseUrl: sandbox.walleot.baseUrl,
    walleotApiKey: sandbox.walleot.apiKey,
  };
}

const endpointsEnvSchema = z.object({
  STRIPE_PORT: z.coerce.number().int().positive(),
  STRIPE_API_KEY: z.string().min(1),
  STRIPE_WEBHOOK_SECRET: z.string().min(1),
  WALLEOT_BASE_URL: z.string().url(),
  WALLEOT_API_KEY: z.string().min(1),
});

export function endpointsToEnv(e: SandboxEndpoints): Record<string, string> {
  return {
    STRIPE_PORT: String(e.stripePort),
    STRIPE_API_KEY: e.stripeApiKey,
    STRIPE_WEBHOOK_SECRET: e.stripeWebhookSecret,
    WALLEOT_BASE_URL: e.walleotBaseUrl,
    WALLEOT_API_KEY: e.walleotApiKey,
  };
}

export function endpointsFromEnv(env: NodeJS.ProcessEnv): SandboxEndpoints {
  const e = endpointsEnvSchema.parse(env);
  return {
    stripePort: e.STRIPE_PORT,
    stripeApiKey: e.STRIPE_API_KEY,
    stripeWebhookSecret: e.STRIPE_WEBHOOK_SECRET,
    walleotBaseUrl: e.WALLEOT_BASE_URL,
    walleotApiKey: e.WALLEOT_API_KEY,
  };
}

/** The Stripe SDK's appInfo name of an instance: it ends up in the User-Agent the stand-in logs. */
export function stripeAgentOf(instanceName: string): string {
  return `payrouter-instance-${instanceName}`;
}

/** This instance's own provider objects, pointed at the shared sandbox. */
function providersFor(instanceName: string, e: SandboxEndpoints, logger: Logger) {
  return [
    new WalleotProvider({ apiKey: e.walleotApiKey, baseUrl: e.walleotBaseUrl, logger }),
    new StripeProvider({
      apiKey: e.stripeApiKey,
      webhookSecret: e.stripeWebhookSecret,
      stripe: {
        host: '127.0.0.1',
        port: e.stripePort,
        protocol: 'http',
        maxNetworkRetries: 1,
        timeout: 5000,
        appInfo: { name: stripeAgentOf(instanceName) },
      },
      logger,
    }),
  ];
}

export type ReportHandler = (topic: string) => Promise<string>;

/**
 * The paid tool every instance of these tests offers, identical everywhere (same name, schema and
 * price), so a payment made through one instance binds the same call on another. Only Stripe may
 * take it, so no method choice is ever asked.
 */
export function registerReportTool(server: McpServer, name: string, handler: ReportHandler): void {
  server.registerTool(
    name,
    {
      description: `Paid report (${name})`,
      inputSchema: { topic: z.string() },
      price: { amount: '1.00', currency: 'USD' },
      providers: ['stripe'],
    },
    async ({ topic }: { topic: string }): Promise<CallToolResult> => ({
      content: [{ type: 'text', text: await handler(topic) }],
    }),
  );
}

export interface InstanceOptions {
  name: string;
  redisUrl: string;
  sandbox: SandboxEndpoints;
  /** Registers the tools on each session's McpServer (the router is already installed on it). */
  tools: (server: McpServer) => void;
  /** Extra router options: leaseMs, timeouts, confirmation, hooks... */
  router?: Omit<Partial<PayRouterOptions>, 'providers' | 'store' | 'publicUrl'>;
  /** Wraps the Redis store before the router gets it (to watch what the router does with it). */
  wrapStore?: (store: PaymentStore) => PaymentStore;
  /** redisStore options besides the client and logger (e.g. legacyKeys). */
  redisStore?: { legacyKeys?: boolean };
  logger?: Logger;
}

export interface Instance {
  name: string;
  origin: string;
  /** The Streamable HTTP endpoint. */
  mcpUrl: string;
  /** Where router.httpHandler() is mounted; also the router's publicUrl. */
  publicUrl: string;
  router: PayRouter;
  store: PaymentStore;
  close(): Promise<void>;
}

/**
 * The bearer token `user-<name>` authenticates user <name>. This stands in for a real token
 * verifier: it puts the user in `authInfo.extra.sub`, which is what lets a payment follow the
 * user from one instance to another.
 */
function authFrom(req: IncomingMessage): AuthInfo | undefined {
  const match = /^Bearer (user-([A-Za-z0-9_-]+))$/.exec(req.headers.authorization ?? '');
  if (!match?.[1] || !match[2]) return undefined;
  return { token: match[1], clientId: 'test', scopes: [], extra: { sub: match[2] } };
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
  });
}

function jsonRpcError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

const MOUNT = '/payrouter';

export async function startInstance(options: InstanceOptions): Promise<Instance> {
  const logger = options.logger ?? silentLogger;
  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const http = createServer((req, res) => {
    if (handle) handle(req, res);
    else jsonRpcError(res, 503, 'starting');
  });
  // publicUrl names the port, so listen first and build the router after.
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const publicUrl = `${origin}${MOUNT}`;

  const redis = new Redis(options.redisUrl, { connectionName: `instance-${options.name}` });
  redis.on('error', (error: unknown) => logger.warn('redis client error', { error }));
  const redisBacked = redisStore({ client: redis, logger, ...options.redisStore });
  const store = options.wrapStore ? options.wrapStore(redisBacked) : redisBacked;
  let router: PayRouter;
  try {
    router = new PayRouter(new McpServer({ name: `instance-${options.name}`, version: '1.0.0' }), {
      providers: providersFor(options.name, options.sandbox, logger),
      store,
      publicUrl,
      logger,
      ...options.router,
    });
  } catch (error) {
    http.close();
    await store.close();
    redis.disconnect();
    throw error;
  }
  const payrouterHttp = router.httpHandler();

  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; server: McpServer }>();

  const handleMcp = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const auth = authFrom(req);
    if (auth) (req as IncomingMessage & { auth?: AuthInfo }).auth = auth;
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (existing) {
      await existing.transport.handleRequest(req, res, body);
      return;
    }
    if (sessionId !== undefined) {
      jsonRpcError(res, 404, 'Session not found');
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      jsonRpcError(res, 400, 'No session: send initialize first');
      return;
    }
    const server = new McpServer({ name: `instance-${options.name}`, version: '1.0.0' });
    router.install(server);
    options.tools(server);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  };

  handle = (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === MOUNT || path.startsWith(`${MOUNT}/`)) {
      payrouterHttp(req, res);
      return;
    }
    if (path !== '/mcp') {
      jsonRpcError(res, 404, 'Not found');
      return;
    }
    handleMcp(req, res).catch((error: unknown) => {
      logger.error('mcp request failed', { error });
      if (!res.headersSent) jsonRpcError(res, 500, 'Internal error');
      else res.destroy();
    });
  };

  let closed = false;
  return {
    name: options.name,
    origin,
    mcpUrl: `${origin}/mcp`,
    publicUrl,
    router,
    store,
    async close() {
      if (closed) return;
      closed = true;
      const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await stopped;
      await Promise.all(
        [...sessions.values()].map(async ({ transport, server }) => {
          await transport.close().catch(() => {});
          await server.close().catch(() => {});
        }),
      );
      sessions.clear();
      await router.close();
      // The router does not own a store it was given: its subscriber connection is ours to close.
      await store.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

export interface UserClient {
  client: Client;
  elicitations: ElicitRequest['params'][];
  call(name: string, args: Record<string, unknown>): Promise<CallToolResult>;
  close(): Promise<void>;
}

/** An SDK client of one instance over Streamable HTTP, signed in as `user`. */
export async function connectUser(
  mcpUrl: string,
  user: string,
  options: {
    elicitation?: Elicitation;
    onElicit?: (request: ElicitRequest['params']) => ElicitResult | Promise<ElicitResult>;
  } = {},
): Promise<UserClient> {
  const elicitation = options.elicitation ?? 'none';
  const client = new Client(
    { name: `user-${user}`, version: '1.0.0' },
    { capabilities: capabilitiesFor(elicitation) },
  );
  const elicitations: ElicitRequest['params'][] = [];
  if (elicitation !== 'none') {
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      elicitations.push(request.params);
      return options.onElicit ? options.onElicit(request.params) : { action: 'cancel' };
    });
  }
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer user-${user}` } },
  });
  await client.connect(transport);
  let closed = false;
  return {
    client,
    elicitations,
    call: async (name, args) => (await client.callTool({ name, arguments: args })) as CallToolResult,
    async close() {
      if (closed) return;
      closed = true;
      // The instance may be gone (killed): ending the session there is best effort.
      await transport.terminateSession().catch(() => {});
      await client.close();
    },
  };
}

/**
 * Resolve once `condition` returns true, checking every few ms (vitest's vi.waitUntil); fail at once
 * when it throws, or after `timeoutMs` naming `what`. vitest is imported here, not at the top: the
 * child process (test/fixtures/instance.ts) loads this file outside vitest and never waits.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const { vi } = await import('vitest');
  let threw = false;
  const checked = async () => {
    try {
      return await condition();
    } catch (error) {
      threw = true;
      throw error;
    }
  };
  try {
    await vi.waitUntil(checked, { timeout: timeoutMs, interval: 10 });
  } catch (error) {
    if (threw) throw error;
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: error });
  }
}

/** Lines a child writes to stderr that start with this are signals to the test. */
export const SIGNAL_PREFIX = 'signal:';
/** The line a child instance writes to stdout once it serves: `ready {json}`. */
export const READY_PREFIX = 'ready ';

const readySchema = z.object({ origin: z.string(), mcpUrl: z.string(), publicUrl: z.string() });

export interface ChildInstance {
  name: string;
  mcpUrl: string;
  publicUrl: string;
  child: ChildProcess;
  /** Everything the child wrote to stderr so far (for failure messages). */
  stderr(): string;
  /** The signals the child sent so far, in order. */
  signals(): string[];
  /** Resolve when the child has sent `signal` (fails after a bound, or when the child exits). */
  waitForSignal(signal: string, timeoutMs?: number): Promise<void>;
  /** SIGKILL, and resolve once the process is gone. */
  kill(): Promise<void>;
}

/**
 * Runs test/fixtures/instance.ts in a child process (`node --import tsx`), sharing this process's
 * sandbox and redis-server, and resolves when it serves.
 */
export async function spawnInstance(options: {
  name: string;
  redisUrl: string;
  sandbox: SandboxEndpoints;
  env?: Record<string, string>;
  startTimeoutMs?: number;
}): Promise<ChildInstance> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/instance.ts'], {
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      INSTANCE_NAME: options.name,
      REDIS_URL: options.redisUrl,
      ...endpointsToEnv(options.sandbox),
      ...options.env,
    },
    // The child exits when its stdin closes: it cannot outlive this process, even a crashed one.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const signals: string[] = [];
  let pendingLine = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    stderr += text;
    const lines = (pendingLine + text).split('\n');
    pendingLine = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith(SIGNAL_PREFIX)) signals.push(line.slice(SIGNAL_PREFIX.length).trim());
    }
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const exited = new Promise<void>((resolve) => {
    if (gone()) resolve();
    else child.once('exit', () => resolve());
  });

  const kill = async () => {
    if (!gone()) child.kill('SIGKILL');
    await exited;
  };

  try {
    await waitUntil(
      () => {
        if (gone()) throw new Error(`child instance ${options.name} exited early:\n${stderr}`);
        return stdout.split('\n').some((l) => l.startsWith(READY_PREFIX));
      },
      `child instance ${options.name} to serve`,
      options.startTimeoutMs ?? 20_000,
    );
  } catch (error) {
    await kill();
    throw error;
  }
  const readyLine = stdout.split('\n').find((l) => l.startsWith(READY_PREFIX)) ?? '';
  const ready = readySchema.parse(JSON.parse(readyLine.slice(READY_PREFIX.length)));

  return {
    name: options.name,
    mcpUrl: ready.mcpUrl,
    publicUrl: ready.publicUrl,
    child,
    stderr: () => stderr,
    signals: () => [...signals],
    waitForSignal: (signal, timeoutMs = 15_000) =>
      waitUntil(
        () => {
          if (signals.includes(signal)) return true;
          if (gone()) throw new Error(`child ${options.name} exited before "${signal}":\n${stderr}`);
          return false;
        },
        `signal "${signal}" from child ${options.name}\n${stderr}`,
        timeoutMs,
      ),
    kill,
  };
}
