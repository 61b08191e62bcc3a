// Paid tools over Streamable HTTP with stateful sessions (Express).
//
//   node --import tsx examples/http-server.ts        # PORT (default 3000), PUBLIC_URL optional
//
// An McpServer serves one connection, so every session gets its own, built by a factory;
// `router.install(server)` puts the one shared router (store, status cache, pollers) on each.
// With PUBLIC_URL set (where this server is reachable from the internet, e.g. a tunnel), the
// router's hosted pay and return pages and the Stripe webhook endpoint are served under
// PUBLIC_URL/payrouter; without it, users pay on the provider's own checkout page.

import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type CreateMcpExpressAppOptions,
  createMcpExpressApp,
} from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import express, { type Express, type Request, type Response } from 'express';
import { type PaidMcpServer, PayRouter } from 'payrouter';
import { z } from 'zod';
import { isMain, paymentProviders } from './payment-providers.js';

const SERVER_INFO = { name: 'report-tools', version: '1.0.0' };

/** The tools every session's server offers. */
function registerTools(server: PaidMcpServer): void {
  server.registerTool(
    'generate_report',
    {
      description: 'Write a short report on a topic',
      inputSchema: { topic: z.string().min(1).max(200) },
      price: { amount: '2.00', currency: 'USD' },
    },
    async ({ topic }) => ({ content: [{ type: 'text', text: `Report on ${topic}: all is well.` }] }),
  );
}

/**
 * An Express app serving MCP at /mcp with one session (transport + McpServer) per client.
 * `createMcpExpressApp` checks the Host header on localhost (DNS rebinding) and parses JSON.
 */
export function mcpSessionsApp(newServer: () => McpServer, options: CreateMcpExpressAppOptions = {}) {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const app = createMcpExpressApp(options);

  app.post('/mcp', async (req: Request, res: Response) => {
    const sessionId = req.header('mcp-session-id');
    const existing = sessionId === undefined ? undefined : sessions.get(sessionId);
    if (existing) return existing.handleRequest(req, res, req.body);
    if (sessionId !== undefined) return sendError(res, 404, 'Session not found');
    if (!isInitializeRequest(req.body)) return sendError(res, 400, 'Bad Request: initialize first');

    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await newServer().connect(transport);
    await transport.handleRequest(req, res, req.body);
  });

  // GET opens the session's notification stream; DELETE ends the session.
  const inSession = async (req: Request, res: Response) => {
    const sessionId = req.header('mcp-session-id');
    if (sessionId === undefined) return sendError(res, 400, 'Bad Request: missing mcp-session-id');
    const transport = sessions.get(sessionId);
    if (!transport) return sendError(res, 404, 'Session not found');
    await transport.handleRequest(req, res);
  };
  app.get('/mcp', inSession);
  app.delete('/mcp', inSession);

  return {
    app,
    async close() {
      await Promise.all([...sessions.values()].map((transport) => transport.close()));
    },
  };
}

function sendError(res: Response, status: number, message: string): void {
  res.status(status).json({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });
}

export interface RunningServer {
  /** The MCP endpoint, e.g. http://127.0.0.1:3000/mcp */
  url: string;
  close(): Promise<void>;
}

/** Listen on 127.0.0.1 (port 0 picks a free one) and serve until `close()`. */
export async function startHttpServer(options: { port?: number } = {}): Promise<RunningServer> {
  const providers = await paymentProviders();
  const publicBase = process.env.PUBLIC_URL?.replace(/\/+$/, '');
  const publicUrl = publicBase ? `${publicBase}/payrouter` : undefined;

  // One router for every session; each session's server gets it with install(), before its tools.
  const router = new PayRouter({ providers: providers.list, ...(publicUrl ? { publicUrl } : {}) });
  const newSessionServer = () => {
    const server = router.install(new McpServer(SERVER_INFO));
    registerTools(server);
    return server;
  };

  const app: Express = express();
  // Mounted before any body parser: webhook signatures are checked over the raw body.
  if (publicUrl) app.use('/payrouter', router.httpHandler());
  // Requests through PUBLIC_URL carry its host name; anything else but localhost is refused.
  const allowedHosts = publicBase ? ['127.0.0.1', 'localhost', new URL(publicBase).hostname] : undefined;
  const mcp = mcpSessionsApp(newSessionServer, {
    host: '127.0.0.1',
    ...(allowedHosts ? { allowedHosts } : {}),
  });
  app.use(mcp.app);

  const httpServer = await listen(app, options.port ?? 3000);
  const { port } = httpServer.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    async close() {
      await mcp.close();
      await closeHttpServer(httpServer);
      await router.close();
      await providers.close();
    },
  };
}

export function listen(app: Express, port: number): Promise<Server> {
  const httpServer = createServer(app);
  return new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(port, '127.0.0.1', () => resolve(httpServer));
  });
}

export function closeHttpServer(httpServer: Server): Promise<void> {
  return new Promise((resolve) => {
    httpServer.close(() => resolve());
    // Idle keep-alive connections would otherwise hold close() open.
    httpServer.closeAllConnections();
  });
}

if (isMain(import.meta.url)) {
  const running = await startHttpServer({ port: Number(process.env.PORT ?? 3000) });
  console.error(`MCP server at ${running.url}`);
  const stop = () => void running.close().then(() => console.error('closed'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
