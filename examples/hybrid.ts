// Walleot credits and Stripe cards side by side: small amounts through credits, a license by card
// only, and a price computed from the arguments. Clients that support form elicitation are asked
// which method to use; others get the cheapest one and the alternatives in the result.
//
//   WALLEOT_API_KEY=... STRIPE_SECRET_KEY=... node --import tsx examples/hybrid.ts    # serves on stdio
//
// Without both keys it uses the local sandbox for both providers.

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { PayRouter, toDecimalString } from 'payrouter';
import { z } from 'zod';
import { isMain, paymentProviders } from './payment-providers.js';

/** Translation costs 50 cents a page: integer cents, turned into an exact decimal string. */
const CENTS_PER_PAGE = 50;

export async function createServer() {
  const providers = await paymentProviders({ require: ['walleot', 'stripe'] });
  const router = new PayRouter({ providers: providers.list });
  const server = router.install(new McpServer({ name: 'language-tools', version: '1.0.0' }));

  // Ten cents is below Stripe's minimum anyway; the override says so explicitly.
  server.registerTool(
    'define_word',
    {
      description: 'Define a word',
      inputSchema: { word: z.string().min(1).max(64) },
      price: { amount: '0.10', currency: 'USD' },
      providers: ['walleot'],
    },
    async ({ word }) => ({ content: [{ type: 'text', text: `${word}: a word worth knowing.` }] }),
  );

  // Dynamic price: evaluated once per call from the validated arguments and bound to the payment.
  server.registerTool(
    'translate_document',
    {
      description: 'Translate a document, priced per page',
      inputSchema: { pages: z.number().int().min(1).max(200), language: z.string().min(2).max(32) },
      price: ({ pages }) => ({
        amount: toDecimalString({ minor: pages * CENTS_PER_PAGE, currency: 'USD' }),
        currency: 'USD',
      }),
    },
    async ({ pages, language }) => ({
      content: [{ type: 'text', text: `Translated ${pages} pages into ${language}.` }],
    }),
  );

  // Cards only.
  server.registerTool(
    'buy_license',
    {
      description: 'Buy a one-year license',
      price: { amount: '49.00', currency: 'USD' },
      providers: ['stripe'],
    },
    async () => ({ content: [{ type: 'text', text: 'License key: DEMO-0000-0000' }] }),
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

if (isMain(import.meta.url)) {
  const { server, close } = await createServer();
  process.stdin.once('end', () => void close());
  await server.connect(new StdioServerTransport());
}
