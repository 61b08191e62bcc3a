// A caller that finds another call of the same payment running waits for that run to finish and
// then hands on its result. The finish must wake it even when it was published between the
// caller's look at the run lease and the moment it began to listen: such a lost wake-up left the
// caller on its one-second fallback timer (seen as a 1 s p90 in the two-instance bench).
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { memoryStore, type PaymentStore, PayRouter, type StatusChange } from '../src/index.js';
import { connectClient, paymentOf, textOf } from './support/paid-server.js';
import { ZeroLatencyProvider } from './support/zero-latency-provider.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('a caller waiting for another run of the same payment', () => {
  it('is woken by that run finishing even when the finish came before it began to listen', async () => {
    const base = memoryStore();
    let armed = false;
    let leases = 0;
    let secondLeaseAsked!: () => void;
    const secondLeaseSeen = new Promise<void>((resolve) => {
      secondLeaseAsked = resolve;
    });
    let runPublished!: () => void;
    const runFinished = new Promise<void>((resolve) => {
      runPublished = resolve;
    });
    // The second caller's "the lease is busy" reaches it only after the first run has finished
    // and published: the window in which it is not listening yet.
    const store = new Proxy(base, {
      get(target, property) {
        if (property === 'acquireLease')
          return async (...args: Parameters<PaymentStore['acquireLease']>) => {
            const outcome = await target.acquireLease(...args);
            if (armed && ++leases === 2) {
              secondLeaseAsked();
              await runFinished;
            }
            return outcome;
          };
        if (property === 'publish')
          return async (change: StatusChange) => {
            await target.publish(change);
            if (armed) runPublished();
          };
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as PaymentStore;
    const server = new McpServer({ name: 'wakeup', version: '1.0.0' });
    const router = new PayRouter(server, {
      providers: [new ZeroLatencyProvider({ mode: 'paid_on_first_read' })],
      store,
      flow: 'two_step',
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    let runs = 0;
    server.registerTool(
      'work',
      { description: 'Work', inputSchema: { n: z.number() }, price: { amount: '0.05', currency: 'USD' } },
      async ({ n }) => {
        runs += 1;
        // Runs until the second caller has found the lease taken.
        await secondLeaseSeen;
        return { content: [{ type: 'text', text: `done ${n}` }] };
      },
    );
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const call = () => client.callTool({ name: 'work', arguments: { n: 1 } }) as Promise<CallToolResult>;
    const payment = paymentOf(await call())!;
    expect(await router.checkPayment(payment.payment_id)).toBe('paid');

    // From here no timer fires by itself: only a wake-up can answer the second caller.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    armed = true;
    const answers: Array<CallToolResult | undefined> = [undefined, undefined];
    const calls = [call(), call()].map((p, i) => p.then((r) => (answers[i] = r)));
    for (let turn = 0; turn < 500 && answers.includes(undefined); turn++)
      await new Promise((resolve) => setImmediate(resolve));
    expect(answers.map((a) => (a === undefined ? 'waiting' : textOf(a)))).toEqual(['done 1', 'done 1']);
    expect(runs).toBe(1);
    vi.useRealTimers();
    await Promise.all(calls);
    await close();
    await router.close();
  });
});
