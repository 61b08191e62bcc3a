import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { memoryStore, type PaymentStore, PayRouter, type PayRouterOptions } from '../../src/index.js';
import { connectClient, type Elicitation, type ElicitHandler } from '../../test/support/paid-server.js';
import { quietLogger } from './mcp.js';

/** What a benchmark tool did: when it started, per call. */
export interface RunLog {
  /** Every start of a tool handler, in order: tool name, the `n` argument, performance.now(). */
  starts: Array<{ tool: string; n: number; at: number }>;
}

export const toolResult = (n: number): CallToolResult => ({ content: [{ type: 'text', text: `done ${n}` }] });

/**
 * One McpServer with a PayRouter and the benchmark tools: `work` (paid, 0.05 USD unless told),
 * `work_free` (the same handler, free), `work_card` (paid in EUR, so only a card provider takes it).
 */
export function benchServer(options: PayRouterOptions & { price?: { amount: string; currency: string } }) {
  const log: RunLog = { starts: [] };
  const server = new McpServer({ name: 'bench', version: '1.0.0' });
  const { price = { amount: '0.05', currency: 'USD' }, ...routerOptions } = options;
  const store = routerOptions.store ?? memoryStore();
  const router = new PayRouter(server, { logger: quietLogger, ...routerOptions, store });
  const handler =
    (tool: string) =>
    async ({ n }: { n: number }) => {
      log.starts.push({ tool, n, at: performance.now() });
      return toolResult(n);
    };
  server.registerTool(
    'work_free',
    { description: 'Work (free)', inputSchema: { n: z.number() } },
    handler('work_free'),
  );
  server.registerTool(
    'work',
    { description: 'Work (paid)', inputSchema: { n: z.number() }, price },
    handler('work'),
  );
  return { server, router, log, store };
}

/** A connected SDK client for `server`. */
export async function benchClient(
  server: McpServer,
  elicitation: Elicitation = 'none',
  onElicit?: ElicitHandler,
): Promise<{ client: Client; close: () => Promise<void> }> {
  const connected = await connectClient(server, {
    elicitation,
    // The harness keeping every elicitation it answered is not the router's memory.
    record: false,
    ...(onElicit === undefined ? {} : { onElicit }),
  });
  return { client: connected.client, close: connected.close };
}

/** A PaymentStore that counts calls per method (for "where does a paid call's time go"). */
export function countingStore(base: PaymentStore): { store: PaymentStore; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const store = new Proxy(base, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        counts.set(String(property), (counts.get(String(property)) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, counts };
}

/** A PaymentStore that remembers the id of every intent inserted into it. */
export function recordingStore(base: PaymentStore): { store: PaymentStore; ids: string[] } {
  const ids: string[] = [];
  const store = new Proxy(base, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property === 'insert') {
        return (record: Parameters<PaymentStore['insert']>[0]) => {
          ids.push(record.id);
          return target.insert(record);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, ids };
}
