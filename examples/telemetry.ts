// OpenTelemetry: payrouter records spans and metrics through @opentelemetry/api only. Register
// any SDK (here the basic tracer and meter providers, printing spans to the console) and each
// paid call becomes a span that continues the client's trace from `_meta.traceparent`, with child
// spans for the steps it takes (route, choose, create, await, run; a call that only runs the tool,
// its payment already confirmed, is one span with the run on it); metrics count payments,
// refusals and latency.
//
//   node --import tsx examples/telemetry.ts    # one traced call from an in-process client; spans printed
//
// Without WALLEOT_API_KEY it points the same configuration at the local sandbox. (Serving on stdio,
// send the console exporter's output elsewhere: stdout is the MCP channel.)

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { MeterProvider, type MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { PayRouter } from 'payrouter';
import { WalleotProvider } from 'payrouter/providers';
import { startSandbox } from 'payrouter/sandbox';
import { z } from 'zod';
import { isMain } from './payment-providers.js';

export async function createServer(options: { exporter?: SpanExporter; metricReader?: MetricReader } = {}) {
  let walleot: WalleotProvider;
  let stopSandbox = async () => {};
  if (process.env.WALLEOT_API_KEY) {
    walleot = new WalleotProvider({ apiKey: process.env.WALLEOT_API_KEY });
  } else {
    const sandbox = await startSandbox();
    walleot = sandbox.providers().walleot;
    stopSandbox = () => sandbox.close();
  }
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(options.exporter ?? new ConsoleSpanExporter())],
  });
  const meterProvider = new MeterProvider({ readers: options.metricReader ? [options.metricReader] : [] });

  const server = new McpServer({ name: 'traced-tools', version: '1.0.0' });
  const router = new PayRouter(server, {
    providers: [walleot],
    telemetry: { tracerProvider, meterProvider },
    limits: { free: { calls: 1, per: 'day' }, spend: [{ max: '1.00', currency: 'USD', per: 'day' }] },
  });
  router.registerTool(
    'summarize',
    {
      description: 'Summarize a text',
      inputSchema: { text: z.string() },
      price: { amount: '0.25', currency: 'USD' },
    },
    async ({ text }) => ({ content: [{ type: 'text', text: `Summary: ${text.slice(0, 40)}` }] }),
  );
  return {
    server,
    router,
    async close() {
      await router.close();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      await stopSandbox();
    },
  };
}

if (isMain(import.meta.url)) {
  const example = await createServer();
  const client = new Client({ name: 'traced-client', version: '1.0.0' });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await Promise.all([example.server.connect(serverSide), client.connect(clientSide)]);
  // The client's own trace: payrouter's span for the call becomes a child of this one.
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  await client.callTool({
    name: 'summarize',
    arguments: { text: 'free the first time' },
    _meta: { traceparent },
  });
  await client.callTool({ name: 'summarize', arguments: { text: 'then paid' }, _meta: { traceparent } });
  await client.close();
  await example.close();
}
