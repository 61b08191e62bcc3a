// Paid tools on the v2 MCP SDK (`@modelcontextprotocol/server`, protocol 2026-07-28), served
// statelessly: no sessions, any number of processes behind one load balancer, payments and
// single-use requestState records in one Redis.
//
//   REDIS_URL=redis://127.0.0.1:6379 REQUEST_STATE_KEY=$(openssl rand -hex 32) PORT=3000 \
//   node --import tsx examples/stateless-v2.ts
//
// 2026-07-28 clients (the v2 `Client`) are served by `createMcpHandler` with a fresh McpServer per
// request: the method choice and the payment link go out as input requests in the tool's result,
// the client retries with the answers and the sealed requestState, and whichever process gets the
// retry carries on. A client that declares the Tasks extension gets a task once it has accepted
// the payment link (`tasks/get` on any process completes it after payment) instead of a request
// held open. Run every process with the same REQUEST_STATE_KEY.
//
// 2025 (1.x SDK) clients are routed to a sessionful transport in this process instead, because the
// stateless legacy leg of createMcpHandler cannot send them elicitation requests: the SDK's legacy
// shim turns the same input requests into real `elicitation/create` requests over the session.
// Those clients need sticky routing on the `mcp-session-id` header; a 1.x client that does not
// elicit could be served statelessly too (it gets the payment-required result and
// confirm_payment), but one transport for all of them keeps this example short.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type AuthInfo,
  createMcpHandler,
  isInitializeRequest,
  isLegacyRequest,
  McpServer,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { Redis } from 'ioredis';
import { type Logger, PayRouter, redisStore } from 'payrouter';
import { installV2 } from 'payrouter/mcp-v2';
import type { PaymentProvider } from 'payrouter/providers';
import { z } from 'zod';
import { isMain, paymentProviders } from './payment-providers.js';

const SERVER_INFO = { name: 'report-tools-v2', version: '1.0.0' };

export interface StatelessConfig {
  port: number;
  redisUrl: string;
  /** The same secret (at least 32 bytes) on every process. */
  requestStateKey: string;
  /** Default: the real providers from the environment, else the local sandbox. */
  providers?: PaymentProvider[];
  /** Who is calling: put your token verifier here (its `extra.sub` is who pays). Default: anonymous. */
  authenticate?: (request: Request) => AuthInfo | undefined | Promise<AuthInfo | undefined>;
  /** Called when a paid tool runs (the tests count runs with it). */
  onRun?: (tool: string, topic: string) => void | Promise<void>;
  logger?: Logger;
}

export interface RunningStateless {
  url: string;
  router: PayRouter;
  close(): Promise<void>;
}

function registerTools(server: McpServer, config: StatelessConfig, router: PayRouter) {
  const paid = installV2(router, server);
  paid.registerTool(
    'generate_report',
    {
      description: 'Write a short report on a topic',
      inputSchema: z.object({ topic: z.string().min(1).max(200) }),
      price: { amount: '2.00', currency: 'USD' },
    },
    async ({ topic }, ctx) => {
      await config.onRun?.('generate_report', topic);
      return {
        content: [
          { type: 'text', text: `Report on ${topic}: all is well. (payment ${ctx.payment.paymentId})` },
        ],
      };
    },
  );
  return paid;
}

export async function startStatelessServer(config: StatelessConfig): Promise<RunningStateless> {
  const example = config.providers ? undefined : await paymentProviders();
  const providers = config.providers ?? example?.list ?? [];
  const redis = new Redis(config.redisUrl);
  redis.on('error', (error: unknown) =>
    config.logger?.warn('redis connection error', { error: String(error) }),
  );
  const store = redisStore({ client: redis, ...(config.logger ? { logger: config.logger } : {}) });
  const router = new PayRouter({
    providers,
    store,
    requestStateKey: config.requestStateKey,
    ...(config.logger ? { logger: config.logger } : {}),
  });

  // 2026-07-28: a fresh McpServer per request, nothing kept between requests.
  const modern = createMcpHandler(() => registerTools(new McpServer(SERVER_INFO), config, router), {
    legacy: 'reject',
  });
  // 2025: one sessionful transport (and McpServer) per 1.x session, in this process.
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>();
  const legacy = async (request: Request, parsedBody: unknown, authInfo: AuthInfo | undefined) => {
    const options = { parsedBody, ...(authInfo ? { authInfo } : {}) };
    const sessionId = request.headers.get('mcp-session-id');
    const existing = sessionId ? sessions.get(sessionId) : undefined;
    if (existing) return existing.handleRequest(request, options);
    if (sessionId)
      return jsonRpcError(404, 'Session not found (1.x sessions stay on the process that started them)');
    if (request.method !== 'POST' || !isInitializeRequest(parsedBody))
      return jsonRpcError(400, 'No session: send initialize first');
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await registerTools(new McpServer(SERVER_INFO), config, router).connect(transport);
    return transport.handleRequest(request, options);
  };

  const http = createServer((req, res) => {
    serve(req, res).catch((error: unknown) => {
      config.logger?.error('mcp request failed', { error: String(error) });
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  async function serve(req: IncomingMessage, res: ServerResponse) {
    if ((req.url ?? '/').split('?')[0] !== '/mcp') return void res.writeHead(404).end();
    const request = await toRequest(req);
    const authInfo = await config.authenticate?.(request);
    const body =
      request.method === 'POST'
        ? await request
            .clone()
            .json()
            .catch(() => undefined)
        : undefined;
    const response = (await isLegacyRequest(request, body))
      ? await legacy(request, body, authInfo)
      : await modern.fetch(request, { parsedBody: body, ...(authInfo ? { authInfo } : {}) });
    await writeResponse(response, res);
  }

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.port, '127.0.0.1', () => resolve());
  });
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    router,
    async close() {
      await closeHttp(http);
      await Promise.all([...sessions.values()].map((t) => t.close().catch(() => {})));
      await modern.close();
      await router.close();
      await store.close();
      await redis.quit().catch(() => redis.disconnect());
      await example?.close();
    },
  };
}

function jsonRpcError(status: number, message: string): Response {
  return Response.json({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }, { status });
}

/** A node request as a web Request (the v2 SDK speaks web standards). */
async function toRequest(req: IncomingMessage): Promise<Request> {
  const chunks: Buffer[] = [];
  if (req.method !== 'GET' && req.method !== 'HEAD')
    for await (const chunk of req) chunks.push(chunk as Buffer);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const controller = new AbortController();
  req.socket.once('close', () => controller.abort());
  return new Request(`http://${req.headers.host ?? '127.0.0.1'}${req.url ?? '/'}`, {
    method: req.method ?? 'GET',
    headers,
    signal: controller.signal,
    ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
  });
}

/** A web Response written to a node response, streaming (SSE) bodies as they come. */
async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  res.writeHead(response.status, Object.fromEntries(response.headers.entries()));
  if (!response.body) return void res.end();
  const reader = response.body.getReader();
  res.once('close', () => reader.cancel().catch(() => {}));
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    res.write(value);
  }
  res.end();
}

function closeHttp(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

if (isMain(import.meta.url)) {
  const key = process.env.REQUEST_STATE_KEY;
  if (!key || key.length < 32) {
    console.error(
      'Set REQUEST_STATE_KEY to a secret of at least 32 characters, e.g. $(openssl rand -hex 32)',
    );
    process.exit(1);
  }
  const running = await startStatelessServer({
    port: Number(process.env.PORT ?? 3000),
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    requestStateKey: key,
  });
  console.error(`payrouter v2 example: MCP at ${running.url} (stateless for 2026-07-28 clients)`);
  const stop = () => void running.close().finally(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
