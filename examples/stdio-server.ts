// A paid tool over stdio: the way desktop MCP clients start local servers.
//
//   node --import tsx examples/stdio-server.ts
//
// stdout carries the protocol, so everything else (ours and payrouter's logs) goes to stderr.
// Without WALLEOT_API_KEY / STRIPE_SECRET_KEY the local sandbox takes the payments.

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { PayRouter } from 'payrouter';
import { z } from 'zod';
import { isMain, paymentProviders } from './payment-providers.js';

export async function createServer() {
  const providers = await paymentProviders();
  const router = new PayRouter({ providers: providers.list });
  const server = router.install(new McpServer({ name: 'text-tools', version: '1.0.0' }));

  // A `price` makes the tool paid; the handler runs only once the payment is confirmed.
  server.registerTool(
    'analyze_text',
    {
      description: 'Count the words and sentences of a text',
      inputSchema: { text: z.string().max(10_000) },
      price: { amount: '0.50', currency: 'USD' },
    },
    async ({ text }) => {
      console.error(`analyze_text ran (${text.length} chars)`);
      const words = text.split(/\s+/).filter(Boolean).length;
      const sentences = text.split(/[.!?]+/).filter((s) => s.trim()).length;
      return { content: [{ type: 'text', text: `${words} words, ${sentences} sentences` }] };
    },
  );

  return {
    server,
    router,
    async close() {
      await server.close();
      await router.close();
      await providers.close();
    },
  };
}

async function main() {
  const { server, close } = await createServer();
  // When the client goes away (stdin ends) or we are told to stop, release the router and the
  // sandbox: nothing else keeps the process alive, so it exits by itself.
  let closed = false;
  const shutdown = () => {
    if (closed) return;
    closed = true;
    void close().then(() => console.error('stdio server closed'));
  };
  process.stdin.once('end', shutdown);
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  await server.connect(new StdioServerTransport());
  console.error('stdio server ready: tool analyze_text costs $0.50');
}

if (isMain(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
