// A machine credential is only verified (`authorized`) when the tool runs; the money moves at the
// settlement after the run. `onPaid`, the ledger's `paid` entry and the payments.paid metric
// follow the settlement: once it succeeded, never for one that failed. Real SDK Client, an agent
// on @x402/core's x402Client, the facilitator stand-in over HTTP, an OpenTelemetry meter.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { x402Client } from '@x402/core/client';
import type { PaymentPayload, PaymentRequired } from '@x402/core/types';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type LedgerEntry, memoryStore, PayRouter } from '../src/index.js';
import { type Sandbox, type SandboxWallet, startSandbox } from '../src/sandbox.js';
import { connectClient, textOf } from './support/paid-server.js';

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

let sandbox: Sandbox;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  sandbox = await startSandbox();
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});
afterAll(async () => {
  await sandbox.close();
});

async function serve() {
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  /** What had been settled at the facilitator when each onPaid fired. */
  const paid: Array<{ intentId: string; settledBefore: number }> = [];
  const ledger: LedgerEntry[] = [];
  const server = new McpServer({ name: 'x402-events', version: '1.0.0' });
  const router = new PayRouter(server, {
    store: memoryStore(),
    providers: [sandbox.x402Provider({ logger: quiet })],
    logger: quiet,
    telemetry: { meterProvider },
    hooks: {
      onPaid: (event) => {
        paid.push({ intentId: event.intentId, settledBefore: sandbox.x402.settlements.length });
      },
      onLedgerEntry: (entry) => {
        ledger.push(entry);
      },
    },
  });
  server.registerTool(
    'summarize',
    {
      description: 'Summarize',
      inputSchema: { text: z.string() },
      price: { amount: '0.25', currency: 'USD' },
    },
    async ({ text }) => ({ content: [{ type: 'text', text: `Summary of ${text}` }] }),
  );
  const { client, close } = await connectClient(server, { elicitation: 'none' });
  closers.push(async () => {
    await close();
    await router.close();
    await meterProvider.shutdown();
  });
  const paidMetric = async () => {
    const { resourceMetrics } = await reader.collect();
    let total = 0;
    for (const scope of resourceMetrics.scopeMetrics)
      for (const metric of scope.metrics)
        if (metric.descriptor.name === 'payrouter.payments.paid')
          for (const point of metric.dataPoints) total += point.value as number;
    return total;
  };
  return { client, paid, ledger, paidMetric };
}

function agentFor(wallet: SandboxWallet) {
  return new x402Client().register('eip155:84532', new ExactEvmScheme(wallet.account));
}

async function call(client: Client, args: Record<string, unknown>, payment?: PaymentPayload) {
  return (await client.callTool({
    name: 'summarize',
    arguments: args,
    ...(payment ? { _meta: { 'x402/payment': payment } } : {}),
  })) as CallToolResult;
}

function requiredOf(result: CallToolResult): PaymentRequired {
  const structured = result.structuredContent as PaymentRequired | undefined;
  if (!structured || !Array.isArray(structured.accepts))
    throw new Error(`no requirements in ${textOf(result)}`);
  return structured;
}

const kinds = (entries: LedgerEntry[]) => entries.map((e) => e.kind);

describe('x402: paid is announced after the settlement', () => {
  it('onPaid, the ledger and the metric wait for the settlement, and fire once', async () => {
    const { client, paid, ledger, paidMetric } = await serve();
    const agent = agentFor(sandbox.x402.newWallet());
    const required = requiredOf(await call(client, { text: 'a' }));
    const before = sandbox.x402.settlements.length;
    const done = await call(client, { text: 'a' }, await agent.createPaymentPayload(required));
    expect(textOf(done)).toBe('Summary of a');
    expect(sandbox.x402.settlements.length).toBe(before + 1);
    expect(paid).toHaveLength(1);
    // When onPaid ran, the money had moved.
    expect(paid[0]!.settledBefore).toBe(before + 1);
    expect(kinds(ledger).filter((k) => k === 'paid')).toHaveLength(1);
    // The run is recorded before the money moves; `paid` comes with the settlement.
    expect(kinds(ledger).indexOf('paid')).toBeGreaterThan(kinds(ledger).indexOf('run'));
    expect(await paidMetric()).toBe(1);
  });

  it('a failed settlement announces nothing; the payment that settles later is announced once', async () => {
    const { client, paid, ledger, paidMetric } = await serve();
    const agent = agentFor(sandbox.x402.newWallet());
    const required = requiredOf(await call(client, { text: 'b' }));
    sandbox.x402.failNextSettle('invalid_exact_evm_insufficient_balance');
    const withheld = await call(client, { text: 'b' }, await agent.createPaymentPayload(required));
    expect(withheld.isError).toBe(true);
    expect(textOf(withheld)).not.toContain('Summary of b');
    expect(paid).toEqual([]);
    expect(kinds(ledger)).not.toContain('paid');
    expect(await paidMetric()).toBe(0);

    // A fresh credential for the same payment: settled, the kept result, paid announced once.
    const again = requiredOf(withheld);
    const done = await call(client, { text: 'b' }, await agent.createPaymentPayload(again));
    expect(textOf(done)).toBe('Summary of b');
    expect(paid).toHaveLength(1);
    expect(kinds(ledger).filter((k) => k === 'paid')).toHaveLength(1);
    expect(await paidMetric()).toBe(1);
  });
});
