// The payer's side: what a person paying meets outside the happy path.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect } from 'vitest';
import { it } from './support/fixture.js';
import { payAt, paymentOf, textOf, type World } from './support/paid-server.js';

const creates = (world: World) =>
  world.sandbox.walleot.requests.entries.filter((r) => r.method === 'POST').length +
  world.sandbox.stripe.requests.entries.filter(
    (r) => r.method === 'POST' && r.path === '/v1/checkout/sessions',
  ).length;

describe('a choice nobody made charges nothing', () => {
  it('an unanswered method choice creates no provider payment and ends with requires_method', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer({ timeouts: { choiceMs: 200, paymentWaitMs: 200 } });
    // The client shows the form but nobody answers before choiceMs.
    const { client } = await connectClient(server, {
      elicitation: 'form+url',
      onElicit: () => new Promise(() => {}),
    });
    const before = creates(world);
    const result = (await client.callTool({ name: 'report', arguments: { topic: 'x' } })) as CallToolResult;
    const payment = paymentOf(result)!;
    expect(result.isError).toBe(true);
    expect(payment.status).toBe('requires_method');
    expect(payment.provider).toBeNull();
    expect(textOf(result)).toMatch(
      /Choose how to pay: call confirm_payment with payment_id "pay_[^"]+" and method/,
    );
    expect(creates(world)).toBe(before);
  });
});

describe('messages that say what happened', () => {
  it('decline and cancel of the method choice are told apart', async ({ world, connectClient }) => {
    const { server } = world.makeServer();
    for (const [action, words] of [
      ['decline', 'You declined the payment'],
      ['cancel', 'The payment was cancelled'],
    ] as const) {
      const { client, close } = await connectClient(server, {
        elicitation: 'form+url',
        onElicit: () => ({ action }),
      });
      const result = (await client.callTool({
        name: 'report',
        arguments: { topic: action },
      })) as CallToolResult;
      expect(textOf(result)).toContain(words);
      expect(textOf(result)).toContain('nothing was charged');
      expect(paymentOf(result)?.status).toBe('canceled');
      await close();
    }
  });
});

describe('the model sees the price', () => {
  it('paid tools carry their price in the description; it can be turned off', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client, close } = await connectClient(server, { elicitation: 'none' });
    const { tools } = await client.listTools();
    const report = tools.find((t) => t.name === 'process_data')!;
    expect(report.description).toBe('Process data. Costs $0.25.');
    expect(tools.find((t) => t.name === 'free_echo' || t.description === 'Free')?.description).toBe('Free');
    await close();
    const off = world.makeServer({ priceInDescription: false });
    const c2 = await connectClient(off.server, { elicitation: 'none' });
    expect((await c2.client.listTools()).tools.find((t) => t.name === 'process_data')?.description).toBe(
      'Process data',
    );
    await c2.close();
  });
});

describe('confirm_payment is portable', () => {
  it('strict schema: no unknown arguments, every property required, ASCII description', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client } = await connectClient(server, { elicitation: 'none' });
    const confirm = (await client.listTools()).tools.find((t) => t.name === 'confirm_payment')!;
    expect(confirm.inputSchema.additionalProperties).toBe(false);
    expect([...(confirm.inputSchema.required ?? [])].sort()).toEqual(['method', 'payment_id']);
    expect(JSON.stringify(confirm.inputSchema.properties?.['method'])).toContain('null');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: checking for non-ASCII
    expect(confirm.description).toMatch(/^[\x00-\x7F]*$/);
    const unknown = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: 'pay_AAAAAAAAAAAAAAAAAAAAAAAA', extra: 1 },
    })) as CallToolResult;
    expect(unknown.isError).toBe(true);
    expect(textOf(unknown)).toMatch(/extra|Unrecognized/i);
    // Omitting method still works for clients that do not send nulls.
    const plain = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: 'pay_AAAAAAAAAAAAAAAAAAAAAAAA' },
    })) as CallToolResult;
    expect(textOf(plain)).toContain('Unknown payment_id');
  });
});

describe('messages after the happy path', () => {
  it('a URL-mode wait that runs out says what to do now', async ({ world, connectClient }) => {
    const { server } = world.makeServer({ timeouts: { choiceMs: 2000, paymentWaitMs: 150 } });
    const { client } = await connectClient(server, {
      elicitation: 'url',
      onElicit: () => ({ action: 'accept' }),
    });
    const result = (await client.callTool({
      name: 'process_data',
      arguments: { data: 'slow' },
    })) as CallToolResult;
    const payment = paymentOf(result)!;
    expect(textOf(result)).toContain('Still waiting for the payment of $0.25');
    expect(textOf(result)).toContain(`confirm_payment with payment_id "${payment.payment_id}"`);
    expect(textOf(result)).toContain('it will not charge you again');
  });

  it('the same call again after its result was delivered says it is a new purchase', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer({ flow: 'two_step' });
    const { client } = await connectClient(server, { elicitation: 'none' });
    const first = paymentOf(
      (await client.callTool({ name: 'process_data', arguments: { data: 'twice' } })) as CallToolResult,
    )!;
    await payAt(first.payment_url!);
    const done = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: first.payment_id },
    })) as CallToolResult;
    expect(textOf(done)).toBe('Processed: twice');
    const again = (await client.callTool({
      name: 'process_data',
      arguments: { data: 'twice' },
    })) as CallToolResult;
    expect(textOf(again)).toContain(
      `You already paid for this exact call before (payment ${first.payment_id})`,
    );
    expect(paymentOf(again)?.payment_id).not.toBe(first.payment_id);
  });
});
