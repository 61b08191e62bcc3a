// `npm run sandbox`: the Walleot and Stripe stand-ins plus a paid MCP server over Streamable HTTP,
// ready to add to an MCP client. No API keys, no real money. Ctrl-C stops everything.
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { localhostHostValidation } from '@modelcontextprotocol/sdk/server/middleware/hostHeaderValidation.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { consoleLogger, type Logger, PayRouter, type PayRouterOptions } from '../src/index.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';

/** The paid tools of the demo and the sandbox server. Prices are picked to show each routing case. */
export function registerDemoTools(server: McpServer, options: { onRun?: (tool: string) => void } = {}): void {
  const ran = (tool: string) => options.onRun?.(tool);
  // One cent: below Stripe's 0.50 USD minimum, so only Walleot credits can take it.
  server.registerTool(
    'word_count',
    {
      description: 'Count the words of a text (costs $0.01)',
      inputSchema: { text: z.string() },
      price: { amount: '0.01', currency: 'USD' },
    },
    async ({ text }) => {
      ran('word_count');
      const words = text.split(/\s+/).filter((w) => w.length > 0).length;
      return { content: [{ type: 'text', text: `${words} words` }] };
    },
  );
  // 0.25 USD, credits only: the usual small paid call.
  server.registerTool(
    'process_data',
    {
      description: 'Process data (costs $0.25)',
      inputSchema: { data: z.string() },
      price: { amount: '0.25', currency: 'USD' },
      providers: ['walleot'],
    },
    async ({ data }) => {
      ran('process_data');
      return { content: [{ type: 'text', text: `Processed: ${data}` }] };
    },
  );
  // 25.00 USD: both methods can take it, so the user chooses.
  server.registerTool(
    'market_report',
    {
      description: 'Write a market report on a topic (costs $25.00)',
      inputSchema: { topic: z.string() },
      price: { amount: '25.00', currency: 'USD' },
    },
    async ({ topic }) => {
      ran('market_report');
      return {
        content: [{ type: 'text', text: `Market report on ${topic}: demand is up, supply is flat.` }],
      };
    },
  );
  server.registerTool(
    'echo',
    { description: 'Free: returns the text', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
}

export interface SandboxServerOptions {
  /** Port of the MCP endpoint and the hosted pages on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Walleot stand-in's port; the Stripe stand-in takes the next one. 0 (default) picks free ports. */
  sandboxPort?: number;
  /**
   * Bearer tokens this server accepts, mapped to the user id (`sub`) that pays. Clients that open
   * a new session per call (the MCP Inspector CLI) send one so payments follow the user.
   * Requests without a token are served too; their session pays.
   */
  bearerTokens?: Readonly<Record<string, string>>;
  logger?: Logger;
  /** Router tuning (flow, timeouts, confirmation polling) and hooks. */
  router?: Pick<PayRouterOptions, 'flow' | 'timeouts' | 'confirmation' | 'paymentTtlMs' | 'hooks'>;
}

export interface SandboxServer {
  /** The Streamable HTTP endpoint to add in an MCP client. */
  mcpUrl: string;
  /** Base URL of the hosted pay and return pages (`router.httpHandler()`). */
  publicUrl: string;
  sandbox: Sandbox;
  router: PayRouter;
  close(): Promise<void>;
}

/** Accept a known bearer token (its user becomes the payer), refuse an unknown one, let anonymous requests through. */
function bearerAuth(tokens: Readonly<Record<string, string>>) {
  return (req: Request & { auth?: AuthInfo }, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    if (header === undefined) return next();
    const token = /^Bearer (\S+)$/i.exec(header)?.[1];
    const sub = token === undefined ? undefined : tokens[token];
    if (token === undefined || sub === undefined) {
      res
        .status(401)
        .set('WWW-Authenticate', 'Bearer error="invalid_token"')
        .json({
          jsonrpc: '2.0',
          error: { code: -32001, message: 'Unknown bearer token' },
          id: null,
        });
      return;
    }
    req.auth = { token, clientId: 'sandbox-client', scopes: [], extra: { sub } };
    next();
  };
}

function jsonRpcError(res: Response, status: number, message: string): void {
  res.status(status).json({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });
}

/** Start the stand-ins, the router and the HTTP server (MCP at `/mcp`, pay pages at the root). */
export async function startSandboxServer(options: SandboxServerOptions = {}): Promise<SandboxServer> {
  const sandbox = await startSandbox({ port: options.sandboxPort ?? 0 });
  const logger = options.logger ?? consoleLogger();
  const app = express();
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const sessions = new Set<McpServer>();
  let router: PayRouter | undefined;
  let httpServer: Server | undefined;

  try {
    // The router needs publicUrl, which needs the port: listen first, build the router, then route.
    httpServer = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(options.port ?? 0, '127.0.0.1', (error?: Error) =>
        error ? reject(error) : resolve(s),
      );
      s.once('error', reject);
    });
    const publicUrl = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
    const providers = sandbox.providers({ logger });
    // The router lives on a template server that never connects; each session installs it again.
    const template = new McpServer({ name: 'payrouter-sandbox', version: '1.0.0' });
    const payRouter = new PayRouter(template, {
      providers: [providers.walleot, providers.stripe],
      publicUrl,
      logger,
      ...(options.router ?? {}),
    });
    router = payRouter;
    registerDemoTools(template);

    const newSessionServer = (): McpServer => {
      const server = new McpServer({ name: 'payrouter-sandbox', version: '1.0.0' });
      payRouter.install(server);
      registerDemoTools(server);
      return server;
    };

    app.use(localhostHostValidation());
    app.use('/mcp', bearerAuth(options.bearerTokens ?? {}));
    app.post('/mcp', express.json({ limit: '1mb' }), async (req: Request, res: Response) => {
      const sessionId = req.header('mcp-session-id');
      let transport = sessionId === undefined ? undefined : transports.get(sessionId);
      if (transport === undefined) {
        if (sessionId !== undefined) return jsonRpcError(res, 404, 'Session not found');
        if (!isInitializeRequest(req.body))
          return jsonRpcError(res, 400, 'Bad Request: initialize first (no session id)');
        const server = newSessionServer();
        const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            transports.set(id, created);
          },
        });
        created.onclose = () => {
          if (created.sessionId !== undefined) transports.delete(created.sessionId);
          sessions.delete(server);
        };
        sessions.add(server);
        await server.connect(created);
        transport = created;
      }
      await transport.handleRequest(req, res, req.body);
    });
    const existingSession = async (req: Request, res: Response) => {
      const transport = transports.get(req.header('mcp-session-id') ?? '');
      if (transport === undefined) return jsonRpcError(res, 404, 'Session not found');
      await transport.handleRequest(req, res);
    };
    app.get('/mcp', existingSession);
    app.delete('/mcp', existingSession);
    // Everything else: the hosted pay page, the return page and webhooks (no body parser before
    // it: webhook signatures are checked on the raw body).
    const pages = payRouter.httpHandler();
    app.use((req, res, next) => pages(req, res, next));
    // Signed Stripe events wake waiting calls at once, as in production.
    sandbox.stripe.setWebhookTarget({ url: `${publicUrl}/webhooks/stripe` });

    const started = httpServer;
    return {
      mcpUrl: `${publicUrl}/mcp`,
      publicUrl,
      sandbox,
      router: payRouter,
      close: async () => {
        await Promise.all([...sessions].map((s) => s.close().catch(() => {})));
        await new Promise<void>((resolve) => {
          started.close(() => resolve());
          started.closeAllConnections();
        });
        await payRouter.close();
        await sandbox.close();
      },
    };
  } catch (error) {
    const failed = httpServer;
    if (failed) {
      failed.closeAllConnections();
      await new Promise<void>((resolve) => failed.close(() => resolve()));
    }
    await router?.close();
    await sandbox.close();
    throw error;
  }
}

/** A token for clients that open a new session per call; the sandbox's only user. */
export const SANDBOX_USER_TOKEN = 'sandbox-user-token';

function readPorts(): { port: number; sandboxPort: number } {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, 'sandbox-port': { type: 'string' } },
    strict: true,
  });
  const portOf = (name: string, text: string | undefined, fallback: number) => {
    if (text === undefined) return fallback;
    const port = Number(text);
    if (!Number.isInteger(port) || port < 0 || port > 65_534)
      throw new Error(`${name} must be a port number, got "${text}"`);
    return port;
  };
  return {
    port: portOf('--port', values.port ?? process.env['PORT'], 3000),
    sandboxPort: portOf('--sandbox-port', values['sandbox-port'], 4010),
  };
}

async function main(): Promise<void> {
  const { port, sandboxPort } = readPorts();
  const server = await startSandboxServer({
    port,
    sandboxPort,
    bearerTokens: { [SANDBOX_USER_TOKEN]: 'sandbox-user' },
  });
  // Handlers first: whoever reads the banner may signal at once.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: stopping…\n`);
    server.close().then(
      () => process.stdout.write('Stopped.\n'),
      (error: unknown) => {
        process.stderr.write(`error while stopping: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  const { walleot, stripe } = server.sandbox;
  process.stdout.write(
    [
      'payrouter sandbox: paid MCP tools with local stand-ins of Walleot and Stripe. No real money moves.',
      '',
      `  MCP server (Streamable HTTP):  ${server.mcpUrl}`,
      `  Hosted pay pages:              ${server.publicUrl}/pay/<payment_id>`,
      `  Walleot stand-in:              ${walleot.baseUrl}   (key ${walleot.apiKey})`,
      `  Stripe stand-in:               ${stripe.origin}   (key ${stripe.apiKey})`,
      '',
      'Add the MCP URL to your MCP client (for example: claude mcp add --transport http payrouter ' +
        `${server.mcpUrl}), then call word_count ($0.01), process_data ($0.25) or market_report ($25.00).`,
      'Payment links open sandbox checkout pages in your browser: press Pay there, then go back to the chat.',
      `Clients that open a new session per call (the MCP Inspector CLI) can send "Authorization: Bearer ${SANDBOX_USER_TOKEN}"`,
      'so a payment made in one call can be confirmed in the next.',
      '',
      'Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `payrouter sandbox failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  });
}
