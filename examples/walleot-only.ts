// Walleot only, configured as in the Walleot provider docs: the provider mapping
// `{ walleot: { apiKey } }` and the price in the tool's `_meta`, as PayMCP servers write it.
//
//   WALLEOT_API_KEY=sk_test_... node --import tsx examples/walleot-only.ts    # serves on stdio
//
// Without WALLEOT_API_KEY it points the same configuration at the local sandbox.

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { PayRouter } from 'payrouter';
import { startSandbox } from 'payrouter/sandbox';
import { z } from 'zod';
import { isMain } from './payment-providers.js';

export async function createServer() {
  let walleot: { apiKey: string; baseUrl?: string };
  let stopSandbox = async () => {};
  if (process.env.WALLEOT_API_KEY) {
    walleot = { apiKey: process.env.WALLEOT_API_KEY };
  } else {
    const sandbox = await startSandbox();
    console.error(
      `payrouter example: no WALLEOT_API_KEY; using the Walleot sandbox at ${sandbox.walleot.origin}`,
    );
    walleot = { apiKey: sandbox.walleot.apiKey, baseUrl: sandbox.walleot.baseUrl };
    stopSandbox = () => sandbox.close();
  }

  const server = new McpServer({ name: 'data-tools', version: '1.0.0' });
  const router = new PayRouter(server, { providers: { walleot } });

  server.registerTool(
    'process_data',
    {
      description: 'Process data',
      inputSchema: { data: z.string() },
      _meta: { price: { amount: 0.25, currency: 'USD' } },
    },
    async ({ data }) => ({ content: [{ type: 'text', text: `Processed: ${data}` }] }),
  );

  return {
    server,
    router,
    async close() {
      await server.close();
      await router.close();
      await stopSandbox();
    },
  };
}

if (isMain(import.meta.url)) {
  const { server, close } = await createServer();
  process.stdin.once('end', () => void close());
  await server.connect(new StdioServerTransport());
}
