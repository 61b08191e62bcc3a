// A production setup: payments in Redis (shared by every instance behind the load balancer),
// the hosted pay and return pages and Stripe webhooks under PUBLIC_URL, a spending cap per payer,
// payment logging and a JSON logger; Streamable HTTP with stateful sessions.
//
//   REDIS_URL=redis://127.0.0.1:6379 PUBLIC_URL=https://tools.example.com PORT=3000 \
//   WALLEOT_API_KEY=... STRIPE_SECRET_KEY=... STRIPE_WEBHOOK_SECRET=whsec_... \
//   node --import tsx examples/production.ts
//
// In the Stripe dashboard, point a webhook endpoint at PUBLIC_URL/payrouter/webhooks/stripe with
// the checkout.session.* events. Without provider keys the local sandbox takes the payments and
// delivers its webhooks here. It listens on 127.0.0.1 behind your TLS-terminating proxy. Several
// instances need sticky routing on the mcp-session-id header (a session lives in one process);
// payments are shared through Redis. Payments (and the cap) belong to the session here; put
// bearer auth in front of /mcp and they follow the user instead (the token's `sub`).

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import express from 'express';
import { Redis } from 'ioredis';
import { formatMoney, type Logger, type Money, type PaidMcpServer, PayRouter, redisStore } from 'payrouter';
import type { Sandbox } from 'payrouter/sandbox';
import { z } from 'zod';
import { closeHttpServer, listen, mcpSessionsApp, type RunningServer } from './http-server.js';
import { isMain, paymentProviders } from './payment-providers.js';

const SERVER_INFO = { name: 'report-tools', version: '1.0.0' };

/** No user pays more than this per 30 days; counted when payments succeed. */
const SPENDING_CAP: Money = { minor: 100_00, currency: 'USD' };
const CAP_WINDOW_SECONDS = 30 * 24 * 60 * 60;

/** One JSON object per line on stderr, the shape log collectors expect. payrouter redacts secrets first. */
const jsonLogger: Logger = {
  debug: (msg, fields) => writeLog('debug', msg, fields),
  info: (msg, fields) => writeLog('info', msg, fields),
  warn: (msg, fields) => writeLog('warn', msg, fields),
  error: (msg, fields) => writeLog('error', msg, fields),
};
function writeLog(level: string, msg: string, fields?: Record<string, unknown>): void {
  if (level === 'debug' && !process.env.DEBUG) return;
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
}

function registerTools(server: PaidMcpServer): void {
  server.registerTool(
    'generate_report',
    {
      description: 'Write a short report on a topic',
      inputSchema: { topic: z.string().min(1).max(200) },
      price: { amount: '2.00', currency: 'USD' },
    },
    async ({ topic }) => ({ content: [{ type: 'text', text: `Report on ${topic}: all is well.` }] }),
  );
}

export interface ProductionConfig {
  port: number;
  redisUrl: string;
  /** Where this server is reachable from outside; default http://127.0.0.1:PORT (local only). */
  publicUrl?: string;
}

export async function startProductionServer(
  config: ProductionConfig,
): Promise<RunningServer & { publicUrl: string; sandbox: Sandbox | undefined }> {
  const providers = await paymentProviders();
  const redis = new Redis(config.redisUrl);
  redis.on('error', (error: unknown) => jsonLogger.error('redis connection error', { error: String(error) }));
  const spentKey = (subject: string) => `spent:${subject}:${SPENDING_CAP.currency}`;

  // Listen first so that with port 0 the public URL can name the real port.
  const app = express();
  const httpServer = await listen(app, config.port);
  const address = httpServer.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const publicBase = (config.publicUrl ?? `http://127.0.0.1:${port}`).replace(/\/+$/, '');
  const publicUrl = `${publicBase}/payrouter`;

  const store = redisStore({ client: redis, logger: jsonLogger });
  const router = new PayRouter({
    providers: providers.list,
    store,
    publicUrl,
    logger: jsonLogger,
    hooks: {
      // Refuse before anything is charged when the user's cap would be exceeded.
      beforeCharge: async ({ amount, subject }) => {
        if (amount.currency !== SPENDING_CAP.currency)
          return { allow: false, reason: 'only USD is accepted' };
        const spent = Number((await redis.get(spentKey(subject))) ?? 0);
        if (spent + amount.minor <= SPENDING_CAP.minor) return true;
        return {
          allow: false,
          reason: `the spending cap of ${formatMoney(SPENDING_CAP)} per 30 days is reached`,
        };
      },
      onPaid: async ({ amount, subject, tool, providerId, intentId }) => {
        await redis
          .multi()
          .incrby(spentKey(subject), amount.minor)
          .expire(spentKey(subject), CAP_WINDOW_SECONDS)
          .exec();
        jsonLogger.info('payment received', { intentId, tool, providerId, amount: formatMoney(amount) });
      },
    },
  });

  // The sandbox plays `stripe listen --forward-to`: its Checkout events come to our endpoint.
  providers.sandbox?.stripe.setWebhookTarget({ url: `${publicUrl}/webhooks/stripe` });

  // Hosted pages and webhooks first: webhook signatures are checked over the raw body.
  app.use('/payrouter', router.httpHandler());
  const mcp = mcpSessionsApp(
    () => {
      const server = router.install(new McpServer(SERVER_INFO));
      registerTools(server);
      return server;
    },
    { host: '127.0.0.1', allowedHosts: ['127.0.0.1', 'localhost', new URL(publicBase).hostname] },
  );
  app.use(mcp.app);

  return {
    url: `http://127.0.0.1:${port}/mcp`,
    publicUrl,
    sandbox: providers.sandbox,
    async close() {
      await mcp.close();
      await closeHttpServer(httpServer);
      await router.close();
      await store.close(); // a store we passed in stays ours to close
      await redis.quit();
      await providers.close();
    },
  };
}

if (isMain(import.meta.url)) {
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    console.error('Set REDIS_URL (e.g. redis://127.0.0.1:6379) to run the production example.');
    process.exit(1);
  }
  const running = await startProductionServer({
    port: Number(process.env.PORT ?? 3000),
    redisUrl,
    ...(process.env.PUBLIC_URL ? { publicUrl: process.env.PUBLIC_URL } : {}),
  });
  jsonLogger.info('serving', { mcp: running.url, publicUrl: running.publicUrl });
  const stop = () => void running.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
