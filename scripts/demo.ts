// `npm run demo`: a paid MCP server with two payment providers (local sandbox stand-ins, no keys,
// no real money) and scripted MCP clients playing the user, then a scripted agent that pays by
// itself with x402, printed as a readable transcript.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  type CallToolResult,
  ElicitRequestSchema,
  type ElicitResult,
} from '@modelcontextprotocol/sdk/types.js';
import { x402Client } from '@x402/core/client';
import type { PaymentRequired } from '@x402/core/types';
import { ExactEvmScheme } from '@x402/evm/exact/client';
import { z } from 'zod';
import { PAYMENT_META_KEY, type PaymentInfo, PayRouter } from '../src/index.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { registerDemoTools } from './sandbox-server.js';

/** The whole demo must finish well within this; a hang is a failure with a reason, not a stuck terminal. */
const DEADLINE_MS = 30_000;

const out = (line = '') => process.stdout.write(`${line}\n`);
const indent = (text: string, prefix = '   | ') =>
  text
    .split('\n')
    .map((l) => prefix + l)
    .join('\n');
const section = (title: string) => {
  out();
  out(`━━ ${title} ━━`);
};

class DemoFailure extends Error {}

function expect(condition: boolean, reason: string): asserts condition {
  if (!condition) throw new DemoFailure(reason);
}

function textOf(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join('\n');
}

function paymentOf(result: CallToolResult): PaymentInfo | undefined {
  return result._meta?.[PAYMENT_META_KEY] as PaymentInfo | undefined;
}

/** The user on a sandbox checkout page: look at it (it must show the amount), then press Pay. */
async function payOnCheckoutPage(url: string, amountDisplay: string, brand: string): Promise<void> {
  const page = await fetch(url);
  const html = await page.text();
  expect(page.ok, `the ${brand} checkout page ${url} answered ${page.status}`);
  expect(html.includes(amountDisplay), `the ${brand} checkout page does not show ${amountDisplay}`);
  const paid = await fetch(`${url.replace(/\/$/, '')}/pay`, { method: 'POST', redirect: 'manual' });
  expect(paid.status < 400, `pressing Pay on ${url} failed with ${paid.status}`);
  out(`User opens the link and presses "Pay ${amountDisplay}" on the ${brand} sandbox checkout page.`);
}

const formRequestSchema = z.object({
  message: z.string(),
  requestedSchema: z.object({
    properties: z.object({
      method: z.object({ oneOf: z.array(z.object({ const: z.string(), title: z.string() })) }),
    }),
  }),
});

/**
 * A client that plays the user: it answers method choices with `pick` and URL-mode links by
 * paying on the checkout page the link opens.
 */
async function connectUser(
  server: McpServer,
  options: { elicitation: boolean; pick?: string; brands: Record<string, string> },
) {
  const client = new Client(
    { name: options.elicitation ? 'demo-client-with-elicitation' : 'demo-client-plain', version: '1.0.0' },
    { capabilities: options.elicitation ? { elicitation: { form: {}, url: {} } } : {} },
  );
  if (options.elicitation) {
    client.setRequestHandler(ElicitRequestSchema, async (request): Promise<ElicitResult> => {
      const params = request.params;
      if (params.mode === 'url') {
        out(`Server asks (URL mode): ${params.message}`);
        out(`   link: ${params.url}`);
        const host = new URL(params.url).origin;
        const brand = options.brands[host] ?? 'payment';
        const amount = /(\$[0-9.,]+)/.exec(params.message)?.[1] ?? '';
        await payOnCheckoutPage(params.url, amount, brand);
        out('User goes back to the chat (the client answers "accept").');
        return { action: 'accept' };
      }
      const form = formRequestSchema.parse(params);
      out(`Server asks (form): ${form.message}`);
      const choices = form.requestedSchema.properties.method.oneOf;
      for (const choice of choices) out(`   ( ) ${choice.title}`);
      const picked = choices.find((c) => c.const === options.pick);
      expect(picked !== undefined, `the method "${options.pick}" was not offered`);
      out(`User picks: ${picked.title}`);
      return { action: 'accept', content: { method: picked.const, remember: false } };
    });
  }
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  out(`User → ${name}(${JSON.stringify(args)})`);
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function showPaidResult(
  result: CallToolResult,
  expected: { text: string; amount: string; provider: string },
) {
  const payment = paymentOf(result);
  expect(
    result.isError !== true,
    `the call did not run the tool; it returned an error:\n${indent(textOf(result))}`,
  );
  expect(textOf(result) === expected.text, `unexpected tool result: "${textOf(result)}"`);
  expect(payment?.status === 'paid', `the payment is "${payment?.status}", not paid`);
  expect(
    payment.amount_display === expected.amount,
    `charged ${payment.amount_display}, not ${expected.amount}`,
  );
  expect(payment.provider === expected.provider, `paid with ${payment.provider}, not ${expected.provider}`);
  out(`Tool result: ${textOf(result)}`);
  out(`Paid: ${payment.amount_display} with ${payment.provider_label} (payment ${payment.payment_id})`);
}

async function runDemo(sandbox: Sandbox, closers: Array<() => Promise<unknown>>): Promise<void> {
  const brands = { [sandbox.walleot.origin]: 'Walleot', [sandbox.stripe.origin]: 'Stripe' };
  const providers = sandbox.providers();
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  // One McpServer per connection; the router is installed on each and shared.
  const first = new McpServer({ name: 'demo-paid-tools', version: '1.0.0' });
  const router = new PayRouter(first, {
    providers: [providers.walleot, providers.stripe],
    logger: {
      ...quiet,
      error: (message, fields) =>
        process.stderr.write(`payrouter error: ${message} ${JSON.stringify(fields)}\n`),
    },
    timeouts: { choiceMs: 10_000, paymentWaitMs: 10_000 },
    confirmation: { pendingTtlMs: 100, poll: { initialMs: 100, maxMs: 500 } },
  });
  closers.push(() => router.close());
  const runs: string[] = [];
  const onRun = (tool: string) => runs.push(tool);
  registerDemoTools(first, { onRun });
  const second = new McpServer({ name: 'demo-paid-tools', version: '1.0.0' });
  router.install(second);
  registerDemoTools(second, { onRun });

  out('payrouter demo: paid MCP tools, two payment providers, two kinds of client.');
  out(`Sandbox stand-ins: Walleot at ${sandbox.walleot.baseUrl}, Stripe at ${sandbox.stripe.origin}.`);
  out('No API keys, no real money.');

  const eliciting = await connectUser(first, { elicitation: true, pick: 'stripe', brands });
  closers.push(() => eliciting.close());

  section('1. A one-cent call, paid from Walleot credits');
  out('Client: declares form and URL elicitation.');
  out('$0.01 is below the card minimum ($0.50), so Walleot credits are the only method: nothing to choose.');
  const words = await call(eliciting, 'word_count', { text: 'the quick brown fox' });
  showPaidResult(words, { text: '4 words', amount: '$0.01', provider: 'walleot' });

  section('2. A $25.00 call: the user chooses how to pay');
  out('Both Walleot credits and a card can take $25.00, so the server asks.');
  const report = await call(eliciting, 'market_report', { topic: 'coffee' });
  showPaidResult(report, {
    text: 'Market report on coffee: demand is up, supply is flat.',
    amount: '$25.00',
    provider: 'stripe',
  });

  section('3. A client without elicitation: pay, then confirm_payment');
  out('Client: declares no elicitation (like most chat apps), so the link comes in the tool result.');
  const plain = await connectUser(second, { elicitation: false, brands });
  closers.push(() => plain.close());
  const required = await call(plain, 'process_data', { data: 'hello' });
  const payment = paymentOf(required);
  expect(required.isError === true && payment !== undefined, 'expected a payment-required result');
  expect(payment.payment_url !== null, 'the payment-required result carries no payment_url');
  out('The user sees:');
  out(indent(textOf(required)));
  out(
    `(machine-readable: payment_id ${payment.payment_id}, ${payment.amount} ${payment.currency}, status ${payment.status})`,
  );
  await payOnCheckoutPage(payment.payment_url, payment.amount_display, 'Walleot');
  const confirmed = await call(plain, 'confirm_payment', { payment_id: payment.payment_id });
  showPaidResult(confirmed, { text: 'Processed: hello', amount: '$0.25', provider: 'walleot' });

  const creates = (entries: Sandbox['walleot']['requests']['entries']) =>
    entries.filter((r) => r.method === 'POST' && r.path.endsWith('/sessions')).length;
  const walleotCreates = creates(sandbox.walleot.requests.entries);
  const stripeCreates = creates(sandbox.stripe.requests.entries);
  expect(walleotCreates === 2, `expected 2 Walleot payments, the sandbox saw ${walleotCreates}`);
  expect(stripeCreates === 1, `expected 1 Stripe Checkout session, the sandbox saw ${stripeCreates}`);
  expect(
    runs.join(',') === 'word_count,market_report,process_data',
    `expected each tool to run once, in order; they ran: ${runs.join(', ') || 'none'}`,
  );
  out();
  out(
    `Done: three paid calls, each ran once. Sandbox payments: ${walleotCreates} Walleot, ${stripeCreates} Stripe.`,
  );

  await agentPaysByItself(sandbox, closers);
}

/**
 * 4. An agent with an x402 wallet: the same kind of payment-required result carries a machine
 * offer beside the link; the agent signs it and retries; the tool runs, then the payment settles.
 */
async function agentPaysByItself(sandbox: Sandbox, closers: Array<() => Promise<unknown>>): Promise<void> {
  section('4. An agent that pays by itself (x402)');
  const providerLogger = {
    debug() {},
    info() {},
    warn() {},
    error: (message: string) => process.stderr.write(`provider error: ${message}\n`),
  };
  const providers = sandbox.providers({ logger: providerLogger });
  const server = new McpServer({ name: 'demo-paid-tools', version: '1.0.0' });
  const runs: string[] = [];
  const router = new PayRouter(server, {
    providers: [providers.walleot, sandbox.x402Provider({ logger: providerLogger })],
    logger: {
      debug() {},
      info() {},
      warn() {},
      error: (message, fields) =>
        process.stderr.write(`payrouter error: ${message} ${JSON.stringify(fields)}\n`),
    },
  });
  closers.push(() => router.close());
  registerDemoTools(server, { onRun: (tool) => runs.push(tool) });
  out('Server: Walleot credits for people, x402 (USDC on Base Sepolia, facilitator stand-in) for agents.');
  const wallet = sandbox.x402.newWallet();
  const agent = new x402Client().register('eip155:84532', new ExactEvmScheme(wallet.account));
  out(`Client: a scripted agent with an x402 wallet (${wallet.address}, 100 test USDC), no elicitation.`);
  const client = new Client({ name: 'demo-agent', version: '1.0.0' }, { capabilities: {} });
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
  closers.push(() => client.close());

  const args = { text: 'agents pay their own way' };
  out(`Agent → word_count(${JSON.stringify(args)})`);
  const first = (await client.callTool({ name: 'word_count', arguments: args })) as CallToolResult;
  const required = first.structuredContent as unknown as PaymentRequired | undefined;
  const offer = required?.accepts?.[0];
  expect(
    first.isError === true && offer !== undefined,
    'expected a payment-required result with an x402 offer',
  );
  out(
    `Server: payment required. x402 offer: ${offer.amount} atomic USDC (${paymentOf(first)?.amount_display}) on ${offer.network} to ${offer.payTo}; a person would get the Walleot link in the same result.`,
  );
  const payment = await agent.createPaymentPayload(required!);
  out(
    'Agent signs a transfer authorization with its wallet and calls again with it in _meta["x402/payment"].',
  );
  out(`Agent → word_count(${JSON.stringify(args)}) + payment`);
  const paid = (await client.callTool({
    name: 'word_count',
    arguments: args,
    _meta: { 'x402/payment': payment },
  })) as CallToolResult;
  const receipt = paid._meta?.['x402/payment-response'] as
    | { success?: boolean; transaction?: string }
    | undefined;
  expect(paid.isError !== true, `the agent's call did not run the tool:\n${indent(textOf(paid))}`);
  expect(receipt?.success === true, 'the payment was not settled');
  expect(textOf(paid) === '5 words', `unexpected tool result: "${textOf(paid)}"`);
  out(`Tool result: ${textOf(paid)}`);
  out(
    `Settled after the run: transaction ${receipt.transaction} (receipt in _meta["x402/payment-response"]).`,
  );
  expect(
    runs.join(',') === 'word_count',
    `expected word_count to run once; it ran: ${runs.join(', ') || 'never'}`,
  );
  const balance = sandbox.x402.balanceOf(wallet.address);
  expect(balance === 99_990_000n, `the agent's wallet holds ${balance} atomic USDC, not 99990000`);
  out('Agent paid $0.01 by itself; the tool ran once.');
}

async function main(): Promise<void> {
  // Failure until proven otherwise: an unexpected exit (a promise that never settles) is not success.
  process.exitCode = 1;
  const deadline = setTimeout(() => {
    process.stderr.write(`\nDemo failed: it did not finish within ${DEADLINE_MS / 1000} s.\n`);
    process.exit(1);
  }, DEADLINE_MS);
  deadline.unref();

  const sandbox = await startSandbox();
  const closers: Array<() => Promise<unknown>> = [];
  let failure: unknown;
  try {
    await runDemo(sandbox, closers);
  } catch (error) {
    failure = error;
  }
  for (const close of closers.reverse()) await close().catch(() => {});
  await sandbox.close();
  clearTimeout(deadline);
  if (failure !== undefined) {
    const reason = failure instanceof Error ? failure.message : String(failure);
    process.stderr.write(`\nDemo failed: ${reason}\n`);
    if (!(failure instanceof DemoFailure) && failure instanceof Error && failure.stack)
      process.stderr.write(`${failure.stack}\n`);
    return;
  }
  process.exitCode = 0;
}

await main();
