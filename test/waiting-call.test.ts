// What a paid call holds while it waits for its payment: nothing left over from the elicitation
// round trip it made before (the SDK leaves its abort listener on the signal it was given).
import { getEventListeners } from 'node:events';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { describe, expect, vi } from 'vitest';
import { z } from 'zod';
import { memoryStore, PayRouter } from '../src/index.js';
import { it } from './support/fixture.js';
import { until } from './support/http-world.js';
import { ZeroLatencyProvider } from './support/zero-latency-provider.js';

describe('a paid call waiting for its payment', () => {
  it('keeps no listener of its finished URL elicitation on the call signal', async ({
    connectClient,
    closeAfter,
  }) => {
    const server = new McpServer({ name: 'waiting', version: '1.0.0' });
    const router = new PayRouter({
      store: memoryStore(),
      providers: [new ZeroLatencyProvider({ mode: 'paid_on_first_read' })],
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    closeAfter(router);
    const paid = router.install(server);
    const listeners: Record<string, number> = {};
    paid.registerTool('free', { description: 'Free', inputSchema: { n: z.number() } }, async (_a, extra) => {
      listeners['free'] = getEventListeners(extra.signal, 'abort').length;
      return { content: [{ type: 'text', text: 'free' }] };
    });
    paid.registerTool(
      'paid',
      { description: 'Paid', inputSchema: { n: z.number() }, price: { amount: '0.05', currency: 'USD' } },
      async (_a, extra) => {
        // The call made its URL elicitation (accepted), waited, and runs now that it is paid.
        listeners['paid'] = getEventListeners(extra.signal, 'abort').length;
        return { content: [{ type: 'text', text: 'paid' }] };
      },
    );
    const { client, elicitations } = await connectClient(server, {
      elicitation: 'url',
      onElicit: () => ({ action: 'accept' }),
    });
    expect((await client.callTool({ name: 'free', arguments: { n: 1 } })).isError).toBeFalsy();
    const result = await client.callTool({ name: 'paid', arguments: { n: 1 } });
    expect(result.isError).toBeFalsy();
    expect(elicitations.map((e) => e.mode)).toEqual(['url']);
    // What the SDK itself keeps on a tool call's signal, and not one listener more.
    expect(listeners['paid']).toBe(listeners['free']);
  });

  it('never listens on its call signal, from its link through its wait', async ({
    connectClient,
    closeAfter,
  }) => {
    const server = new McpServer({ name: 'waiting', version: '1.0.0' });
    const provider = new ZeroLatencyProvider({ mode: 'manual' });
    const router = new PayRouter({
      store: memoryStore(),
      providers: [provider],
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    closeAfter(router);
    const paid = router.install(server);
    const signals: AbortSignal[] = [];
    paid.registerTool(
      'paid',
      { description: 'Paid', inputSchema: { n: z.number() }, price: { amount: '0.05', currency: 'USD' } },
      async (_a, extra) => {
        signals.push(extra.signal);
        return { content: [{ type: 'text', text: 'paid' }] };
      },
    );
    // Every abort listener added anywhere while the call asks and waits: Node builds a
    // signal's event tables with its first listener and keeps them, so the call would hold them.
    const listened = vi.spyOn(AbortSignal.prototype, 'addEventListener');
    closeAfter({ close: () => listened.mockRestore() });
    const links: string[] = [];
    const { client } = await connectClient(server, {
      elicitation: 'url',
      onElicit: (request) => {
        if ('url' in request) links.push(request.url);
        return { action: 'accept' };
      },
    });

    const call = client.callTool({ name: 'paid', arguments: { n: 1 } });
    await until(() => provider.reads >= 1, 'the call to wait');
    const duringWait = new Set(listened.mock.contexts);
    provider.pay(links.at(-1)!.split('/').at(-1)!);
    expect((await call).isError).toBeFalsy();
    expect(signals).toHaveLength(1);
    expect(duringWait.has(signals[0]!)).toBe(false);
  });
});
