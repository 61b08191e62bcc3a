// `DEBUG=payrouter*` tells the story of one paid call, a line per step under its namespace: the
// route decision and why, the method choice asked and answered, the provider's request and its
// latency, the link sent and answered, paid, the tool ran. Each line has its time; no secret.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { consoleLogger, PayRouter } from '../src/index.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { connectClient, textOf } from './support/paid-server.js';

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await startSandbox();
});
afterAll(async () => {
  await sandbox?.close();
});

interface Line {
  time: string;
  namespace: string;
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

/** One paid call (Stripe chosen in the form, the link opened from the URL elicitation), logged with `debug`. */
async function storyOf(debug: string): Promise<{ lines: Line[]; raw: string; result: CallToolResult }> {
  let raw = '';
  const logger = consoleLogger({ debug, stream: { write: (line: string) => (raw += line) } });
  sandbox.reset();
  const router = new PayRouter({
    providers: Object.values(sandbox.providers({ logger })),
    logger,
    timeouts: { paymentWaitMs: 20_000 },
  });
  const server = router.install(new McpServer({ name: 'story', version: '1.0.0' }));
  server.registerTool(
    'shout',
    { inputSchema: { word: z.string() }, price: { amount: '0.75', currency: 'USD' } },
    async ({ word }) => ({ content: [{ type: 'text', text: `${word.toUpperCase()}!` }] }),
  );
  const { client, close } = await connectClient(server, {
    elicitation: 'form+url',
    onElicit: async (request) => {
      if (request.mode === 'url') {
        await sandbox.pay(request.url);
        return { action: 'accept' };
      }
      return { action: 'accept', content: { method: 'stripe' } };
    },
  });
  const result = (await client.callTool({ name: 'shout', arguments: { word: 'hi' } })) as CallToolResult;
  await close();
  await router.close();
  const lines = raw
    .trim()
    .split('\n')
    .map((line) => {
      const match = /^(\S+) (\S+) (\w+): (.*?)(?: (\{.*\}))?$/.exec(line);
      if (!match) throw new Error(`not a log line: ${line}`);
      return {
        time: match[1]!,
        namespace: match[2]!,
        level: match[3]!,
        message: match[4]!,
        fields: match[5] ? (JSON.parse(match[5]) as Record<string, unknown>) : {},
      };
    });
  return { lines, raw, result };
}

describe('DEBUG=payrouter* on one paid call', () => {
  it('tells the story in order, each step under its namespace, each line stamped', async () => {
    const { lines, raw, result } = await storyOf('payrouter*');
    expect(textOf(result)).toBe('HI!');
    for (const line of lines) expect(Number.isNaN(Date.parse(line.time)), line.time).toBe(false);

    const at = (namespace: string, message: string) =>
      lines.findIndex((l) => l.namespace === namespace && l.message === message);
    const find = (namespace: string, message: string) => lines[at(namespace, message)]!;
    const story = [
      ['payrouter:routing', 'route'],
      ['payrouter:elicitation', 'method choice asked'],
      ['payrouter:elicitation', 'method choice answered'],
      ['payrouter:stripe', 'stripe request'],
      ['payrouter:elicitation', 'payment link sent'],
      ['payrouter:elicitation', 'payment link answered'],
      ['payrouter:run', 'paid'],
      ['payrouter:run', 'tool ran'],
    ] as const;
    const positions = story.map(([namespace, message]) => at(namespace, message));
    expect(
      positions.every((p) => p >= 0),
      JSON.stringify(story.filter((_, i) => positions[i]! < 0)),
    ).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);

    // The route decision says what it did and why each provider was or was not a candidate.
    expect(find('payrouter:routing', 'route').fields).toMatchObject({
      tool: 'shout',
      amount: '0.75 USD',
      action: 'ask',
      eligible: ['walleot', 'stripe'],
    });
    expect(find('payrouter:elicitation', 'method choice answered').fields).toMatchObject({
      action: 'accept',
      method: 'stripe',
    });
    expect(find('payrouter:stripe', 'stripe request').fields).toMatchObject({
      method: 'POST',
      path: '/v1/checkout/sessions',
      status: 200,
      durationMs: expect.any(Number),
    });
    expect(find('payrouter:elicitation', 'payment link sent').fields).toMatchObject({ mode: 'url' });
    expect(find('payrouter:run', 'paid').fields).toMatchObject({ provider: 'stripe', amount: '0.75 USD' });
    expect(find('payrouter:run', 'tool ran').fields).toMatchObject({
      tool: 'shout',
      ok: true,
      durationMs: expect.any(Number),
    });
    expect(raw).not.toContain(sandbox.stripe.apiKey);
    expect(raw).not.toContain(sandbox.walleot.apiKey);
  }, 60_000);

  it('follows DEBUG exclusions: -payrouter:elicitation and -payrouter:stripe drop exactly those', async () => {
    const { lines } = await storyOf('payrouter*,-payrouter:elicitation,-payrouter:stripe');
    const namespaces = new Set(lines.map((l) => l.namespace));
    expect(namespaces.has('payrouter:routing')).toBe(true);
    expect(namespaces.has('payrouter:run')).toBe(true);
    expect(namespaces.has('payrouter:elicitation')).toBe(false);
    expect(namespaces.has('payrouter:stripe')).toBe(false);
  }, 60_000);
});
