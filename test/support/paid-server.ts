import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  type CallToolResult,
  type ElicitRequest,
  ElicitRequestSchema,
  type ElicitResult,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import {
  memoryStore,
  PAYMENT_META_KEY,
  type PaymentInfo,
  type PaymentStore,
  PayRouter,
  type PayRouterOptions,
} from '../../src/index.js';
import { type Sandbox, startSandbox } from '../../src/sandbox.js';

/** The store each test router uses, to look at intents the way the router sees them. */
export const storesOf = new WeakMap<PayRouter, PaymentStore>();

export type Elicitation = 'none' | 'form' | 'url' | 'form+url';

export function capabilitiesFor(elicitation: Elicitation) {
  switch (elicitation) {
    case 'none':
      return {};
    case 'form':
      return { elicitation: { form: {} } };
    case 'url':
      return { elicitation: { url: {} } };
    case 'form+url':
      return { elicitation: { form: {}, url: {} } };
  }
}

export type ElicitHandler = (request: ElicitRequest['params']) => Promise<ElicitResult> | ElicitResult;

/** An SDK Client over InMemory with the given elicitation support, optional auth injected on every message. */
export async function connectClient(
  server: McpServer,
  options: {
    elicitation: Elicitation;
    onElicit?: ElicitHandler;
    authInfo?: AuthInfo;
    name?: string;
    /** Keep every elicitation in `elicitations` (default true; benchmarks measuring memory say false). */
    record?: boolean;
  },
) {
  const client = new Client(
    { name: options.name ?? 'test-client', version: '1.0.0' },
    { capabilities: capabilitiesFor(options.elicitation) },
  );
  const elicitations: ElicitRequest['params'][] = [];
  if (options.elicitation !== 'none') {
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      if (options.record !== false) elicitations.push(request.params);
      if (!options.onElicit) return { action: 'cancel' };
      return options.onElicit(request.params);
    });
  }
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  if (options.authInfo) {
    const send = clientTransport.send.bind(clientTransport);
    const authInfo = options.authInfo;
    clientTransport.send = (message, sendOptions) => send(message, { ...sendOptions, authInfo });
  }
  await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
  return { client, elicitations, close: () => client.close() };
}

/** The machine-readable payment object of a result, if any. */
export function paymentOf(result: CallToolResult | Record<string, unknown>): PaymentInfo | undefined {
  const meta = (result as CallToolResult)._meta;
  return meta?.[PAYMENT_META_KEY] as PaymentInfo | undefined;
}

export function textOf(result: CallToolResult | Record<string, unknown>): string {
  const content = (result as CallToolResult).content ?? [];
  return content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

/** Play the user on a sandbox checkout page: press Pay (or Cancel). */
export async function payAt(url: string, action: 'pay' | 'cancel' = 'pay'): Promise<void> {
  const response = await fetch(`${url.replace(/\/$/, '')}/${action}`, { method: 'POST', redirect: 'manual' });
  if (response.status >= 400)
    throw new Error(`checkout ${action} failed: ${response.status} ${await response.text()}`);
}

/** The sandbox checkout URL of an intent's live attempt, read from the payment object (provider URL flows). */
export function checkoutUrlOf(info: PaymentInfo | undefined): string {
  if (!info?.payment_url) throw new Error('result carries no payment_url');
  return info.payment_url;
}

/** A sandbox, providers pointed at it, and a factory of paid servers with the standard test tools. */
export async function startWorld() {
  const sandbox: Sandbox = await startSandbox();
  const runs: Array<{
    tool: string;
    args: unknown;
    sessionId?: string | undefined;
    hasSignal: boolean;
    authSub?: unknown;
  }> = [];
  const routers: PayRouter[] = [];

  function makeServer(
    options: Partial<PayRouterOptions> & { providers?: PayRouterOptions['providers'] } = {},
  ) {
    const providers = sandbox.providers();
    const server = new McpServer({ name: 'paid-tools', version: '1.0.0' });
    const store = options.store ?? memoryStore();
    const router = new PayRouter(server, {
      store,
      providers: [providers.walleot, providers.stripe],
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      timeouts: { choiceMs: 5000, paymentWaitMs: 3000 },
      confirmation: { pendingTtlMs: 50, poll: { initialMs: 20, maxMs: 100 } },
      ...options,
    });
    routers.push(router);
    storesOf.set(router, store);
    server.registerTool(
      'process_data',
      {
        description: 'Process data',
        inputSchema: { data: z.string() },
        price: { amount: 0.25, currency: 'USD' },
        providers: ['walleot'],
      },
      async ({ data }, extra) => {
        runs.push({
          tool: 'process_data',
          args: { data },
          sessionId: extra.sessionId,
          hasSignal: extra.signal instanceof AbortSignal,
          authSub: extra.authInfo?.extra?.['sub'],
        });
        return { content: [{ type: 'text', text: `Processed: ${data}` }] };
      },
    );
    server.registerTool(
      'cheap',
      { description: 'One cent', inputSchema: { n: z.number() }, price: { amount: '0.01', currency: 'USD' } },
      async ({ n }) => {
        runs.push({ tool: 'cheap', args: { n }, hasSignal: true });
        return { content: [{ type: 'text', text: `cheap ${n}` }] };
      },
    );
    server.registerTool(
      'report',
      {
        description: 'A big report',
        inputSchema: z.object({ topic: z.string(), pages: z.number().int().default(1) }),
        price: { amount: '25.00', currency: 'USD' },
      },
      async ({ topic, pages }) => {
        runs.push({ tool: 'report', args: { topic, pages }, hasSignal: true });
        return { content: [{ type: 'text', text: `Report on ${topic} (${pages} pages)` }] };
      },
    );
    server.registerTool(
      'status_now',
      { description: 'No arguments, priced in yen', price: { amount: 500, currency: 'JPY' } },
      async (extra) => {
        runs.push({ tool: 'status_now', args: {}, hasSignal: extra.signal instanceof AbortSignal });
        return { content: [{ type: 'text', text: 'all good' }] };
      },
    );
    server.registerTool(
      'free_echo',
      { description: 'Free', inputSchema: { text: z.string() } },
      async ({ text }) => ({
        content: [{ type: 'text', text }],
      }),
    );
    return { server, router };
  }

  return {
    sandbox,
    runs,
    makeServer,
    runsOf: (tool: string) => runs.filter((r) => r.tool === tool).length,
    async close() {
      await Promise.all(routers.map((r) => r.close()));
      await sandbox.close();
    },
  };
}

export type World = Awaited<ReturnType<typeof startWorld>>;
