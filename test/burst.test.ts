// A burst of paid calls arriving together must not hold the event loop for all of their starts:
// a timer, a webhook or another request gets its turn while they are still being started. Over
// InMemory with an in-process provider nothing else breaks the calls' work into turns, so without
// the router doing it the whole burst runs in one stretch.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { memoryStore, PayRouter } from '../src/index.js';
import { connectClient, paymentOf } from './support/paid-server.js';
import { ZeroLatencyProvider } from './support/zero-latency-provider.js';

const CALLS = 500;

/** A two-step paid tool on a router over an in-process provider; each call its own payer. */
async function burstWorld() {
  const provider = new ZeroLatencyProvider({ mode: 'manual' });
  const server = new McpServer({ name: 'burst', version: '1.0.0' });
  const router = new PayRouter(server, {
    providers: [provider],
    store: memoryStore(),
    flow: 'two_step',
    // The per-payer bound on open payments is not what is tested here.
    subject: (extra) => String(extra.requestId),
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  server.registerTool(
    'work',
    { description: 'Work', inputSchema: { n: z.number() }, price: { amount: '0.05', currency: 'USD' } },
    async ({ n }) => ({ content: [{ type: 'text', text: `done ${n}` }] }),
  );
  const { client, close } = await connectClient(server, { elicitation: 'none', record: false });
  return { provider, router, client, close };
}

describe('a burst of paid calls', () => {
  it('is started over many turns of the event loop, a few dozen at first, and every call still gets its payment', async () => {
    const { provider, client, close, router } = await burstWorld();
    // Turns of the event loop, counted by an immediate that schedules the next one; each provider
    // request is stamped with the turn it was made in.
    let turn = 0;
    let counting = true;
    const tick = () => {
      turn += 1;
      if (counting) setImmediate(tick);
    };
    const createdIn: number[] = [];
    const create = provider.createPayment.bind(provider);
    provider.createPayment = (...args) => {
      createdIn.push(turn);
      return create(...args);
    };
    try {
      setImmediate(tick);
      const calls = Array.from({ length: CALLS }, (_, n) =>
        client.callTool({ name: 'work', arguments: { n } }),
      );
      const results = await Promise.all(calls);
      counting = false;

      expect(results.map((r) => paymentOf(r)?.status)).toEqual(Array(CALLS).fill('pending'));
      expect(createdIn).toHaveLength(CALLS);
      const perTurn = new Map<number, number>();
      for (const t of createdIn) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
      // The turn they were sent in starts at most twice the router's burst size (32) of them.
      expect(perTurn.get(0) ?? 0).toBeGreaterThan(0);
      expect(perTurn.get(0)).toBeLessThanOrEqual(64);
      expect(perTurn.size).toBeGreaterThan(2);
    } finally {
      counting = false;
      await close();
      await router.close();
    }
  });

  it('does nothing for a call its client cancelled while it waited for its turn', async () => {
    const { provider, client, close, router } = await burstWorld();
    try {
      // 600 at once; the ones from 400 on are cancelled by their client at the next turn, when at
      // most 64 + 256 (the first turn's, then one turn's most) have been let through.
      const controllers = Array.from({ length: 600 }, () => new AbortController());
      const calls = controllers.map((controller, n) =>
        client.callTool({ name: 'work', arguments: { n } }, undefined, { signal: controller.signal }).then(
          (result) => paymentOf(result)?.status,
          () => 'cancelled',
        ),
      );
      setImmediate(() => {
        for (const controller of controllers.slice(400)) controller.abort();
      });
      const outcomes = await Promise.all(calls);
      expect(outcomes.slice(0, 400)).toEqual(Array(400).fill('pending'));
      expect(outcomes.slice(400)).toEqual(Array(200).fill('cancelled'));
      // Let the server finish whatever the cancelled calls were doing, then count.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(provider.creates).toBe(400);
    } finally {
      await close();
      await router.close();
    }
  });
});
