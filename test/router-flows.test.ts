import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect } from 'vitest';
import { it } from './support/fixture.js';
import { payAt, paymentOf, textOf, type World } from './support/paid-server.js';

const creates = (world: World, provider: 'walleot' | 'stripe') =>
  world.sandbox[provider].requests.entries.filter((r) => r.method === 'POST' && /\/sessions$/.test(r.path))
    .length;

describe('client without elicitation: payment-required result and confirm_payment', () => {
  it('pays, confirms and runs the tool once, with the exact provider requests', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client } = await connectClient(server, { elicitation: 'none' });

    const first = (await client.callTool({
      name: 'process_data',
      arguments: { data: 'hello' },
    })) as CallToolResult;
    expect(first.isError).toBe(true);
    const payment = paymentOf(first)!;
    expect(payment).toMatchObject({
      status: 'pending',
      amount: '0.25',
      currency: 'USD',
      provider: 'walleot',
      amount_display: '$0.25',
    });
    expect(first.structuredContent).toEqual({ payment });
    expect(textOf(first)).toContain('$0.25');
    expect(textOf(first)).toContain(payment.payment_url!);
    expect(textOf(first)).toContain('confirm_payment');
    expect(world.runsOf('process_data')).toBe(0);

    const createBody = JSON.parse(
      world.sandbox.walleot.requests.entries.find((r) => r.method === 'POST')!.body,
    );
    expect(createBody).toMatchObject({ amount: 25, currency: 'usd' });

    // Not paid yet: confirm says so and runs nothing.
    const early = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id },
    })) as CallToolResult;
    expect(early.isError).toBe(true);
    expect(paymentOf(early)?.status).toBe('pending');
    expect(world.runsOf('process_data')).toBe(0);

    await payAt(payment.payment_url!);
    const done = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id },
    })) as CallToolResult;
    expect(done.isError).toBeFalsy();
    expect(textOf(done)).toBe('Processed: hello');
    expect(paymentOf(done)?.status).toBe('paid');

    // Confirming again returns the stored result; the tool does not run twice.
    const again = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id },
    })) as CallToolResult;
    expect(textOf(again)).toBe('Processed: hello');
    expect(world.runsOf('process_data')).toBe(1);
    // Exactly one create, then only status reads of that one session; nothing at Stripe.
    const sessionId = new URL(payment.payment_url!).pathname.split('/').pop()!;
    const requests = world.sandbox.walleot.requests.entries.map((r) => `${r.method} ${r.path}`);
    expect(requests[0]).toBe('POST /v1/sessions');
    expect(new Set(requests.slice(1))).toEqual(new Set([`GET /v1/sessions/${sessionId}`]));
    expect(world.sandbox.stripe.requests.entries).toHaveLength(0);
  });

  it('a retry before paying reuses the payment; a retry after paying runs the tool', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client } = await connectClient(server, { elicitation: 'none' });
    const a = paymentOf(
      (await client.callTool({ name: 'process_data', arguments: { data: 'x' } })) as CallToolResult,
    )!;
    const b = paymentOf(
      (await client.callTool({ name: 'process_data', arguments: { data: 'x' } })) as CallToolResult,
    )!;
    expect(b.payment_id).toBe(a.payment_id);
    expect(creates(world, 'walleot')).toBe(1);

    await payAt(a.payment_url!);
    const ran = (await client.callTool({ name: 'process_data', arguments: { data: 'x' } })) as CallToolResult;
    expect(textOf(ran)).toBe('Processed: x');
    expect(world.runsOf('process_data')).toBe(1);
  });

  it('several eligible methods and no way to ask: takes the cheapest and lists the alternative', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client } = await connectClient(server, { elicitation: 'none' });
    const result = (await client.callTool({
      name: 'report',
      arguments: { topic: 'cats' },
    })) as CallToolResult;
    const payment = paymentOf(result)!;
    expect(payment.provider).toBe('walleot');
    expect(payment.alternatives.map((a) => a.provider)).toEqual(['stripe']);

    // Switch to the card: a Stripe Checkout session replaces the Walleot one.
    const switched = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id, method: 'stripe' },
    })) as CallToolResult;
    const card = paymentOf(switched)!;
    expect(card.provider).toBe('stripe');
    expect(card.payment_url).toContain('/checkout/cs_');
    expect(
      world.sandbox.walleot.getSession(new URL(payment.payment_url!).pathname.split('/').pop()!)?.status,
    ).toBe('pending');

    await payAt(card.payment_url!);
    const done = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id },
    })) as CallToolResult;
    expect(textOf(done)).toBe('Report on cats (1 pages)');
    expect(world.runsOf('report')).toBe(1);
  });

  it('paying the earlier link after switching methods still unlocks the call, once', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client } = await connectClient(server, { elicitation: 'none' });
    const first = paymentOf(
      (await client.callTool({ name: 'report', arguments: { topic: 'old link' } })) as CallToolResult,
    )!;
    expect(first.provider).toBe('walleot');
    const switched = paymentOf(
      (await client.callTool({
        name: 'confirm_payment',
        arguments: { payment_id: first.payment_id, method: 'stripe' },
      })) as CallToolResult,
    )!;
    expect(switched.provider).toBe('stripe');
    // Walleot links cannot be canceled: the user pays the one they saw first.
    await payAt(first.payment_url!);
    const done = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: first.payment_id },
    })) as CallToolResult;
    expect(textOf(done)).toBe('Report on old link (1 pages)');
    expect(world.runsOf('report')).toBe(1);
    // The card session the user no longer needs is closed, so it cannot take money too.
    const cardSession = new URL(switched.payment_url!).pathname.split('/').pop()!;
    expect(world.sandbox.stripe.getSession(cardSession)?.status).toBe('expired');
  });

  it('if the user pays both links, the card payment is refunded and the tool runs once', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client } = await connectClient(server, { elicitation: 'none' });
    const first = paymentOf(
      (await client.callTool({ name: 'report', arguments: { topic: 'twice' } })) as CallToolResult,
    )!;
    const second = paymentOf(
      (await client.callTool({
        name: 'confirm_payment',
        arguments: { payment_id: first.payment_id, method: 'stripe' },
      })) as CallToolResult,
    )!;
    await payAt(first.payment_url!); // the Walleot link (cannot be canceled)
    await payAt(second.payment_url!); // and the card, before the server noticed the first
    const done = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: first.payment_id },
    })) as CallToolResult;
    expect(textOf(done)).toBe('Report on twice (1 pages)');
    expect(world.runsOf('report')).toBe(1);
    const refunds = world.sandbox.stripe.requests.entries.filter((r) => r.path === '/v1/refunds');
    expect(refunds).toHaveLength(1);
  });

  it('a failed or expired payment never runs the tool, and the next call starts afresh', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client } = await connectClient(server, { elicitation: 'none' });
    const first = paymentOf(
      (await client.callTool({ name: 'process_data', arguments: { data: 'f' } })) as CallToolResult,
    )!;
    const sessionId = new URL(first.payment_url!).pathname.split('/').pop()!;
    world.sandbox.walleot.setStatus(sessionId, 'failed');
    const confirm = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: first.payment_id },
    })) as CallToolResult;
    expect(paymentOf(confirm)?.status).toBe('failed');
    expect(textOf(confirm)).toContain('failed');

    const second = paymentOf(
      (await client.callTool({ name: 'process_data', arguments: { data: 'f' } })) as CallToolResult,
    )!;
    expect(second.payment_id).not.toBe(first.payment_id);
    const secondSession = new URL(second.payment_url!).pathname.split('/').pop()!;
    world.sandbox.walleot.setStatus(secondSession, 'expired');
    const expired = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: second.payment_id },
    })) as CallToolResult;
    expect(paymentOf(expired)?.status).toBe('expired');
    expect(world.runsOf('process_data')).toBe(0);
  });

  it('a JPY price goes to Stripe only; a tool without input schema works', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client } = await connectClient(server, { elicitation: 'none' });
    const result = (await client.callTool({ name: 'status_now', arguments: {} })) as CallToolResult;
    const payment = paymentOf(result)!;
    expect(payment).toMatchObject({
      provider: 'stripe',
      amount: '500',
      currency: 'JPY',
      amount_display: '¥500',
    });
    const body = decodeURIComponent(
      world.sandbox.stripe.requests.entries.find((r) => r.method === 'POST')!.body,
    );
    expect(body).toContain('[unit_amount]=500');
    expect(body).toContain('[currency]=jpy');
    await payAt(payment.payment_url!);
    const done = (await client.callTool({ name: 'status_now', arguments: {} })) as CallToolResult;
    expect(textOf(done)).toBe('all good');
    expect(world.runs.find((r) => r.tool === 'status_now')?.hasSignal).toBe(true);
  });
});

describe('client with form elicitation', () => {
  it('0.01 USD goes straight to Walleot without asking', async ({ world, connectClient }) => {
    const { server } = world.makeServer();
    const { client, elicitations } = await connectClient(server, {
      elicitation: 'form',
      onElicit: () => ({ action: 'cancel' }),
    });
    const result = (await client.callTool({ name: 'cheap', arguments: { n: 1 } })) as CallToolResult;
    expect(paymentOf(result)?.provider).toBe('walleot');
    expect(elicitations).toHaveLength(0);
  });

  it('25.00 USD asks the user, who picks the card; the link comes in the result', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client, elicitations } = await connectClient(server, {
      elicitation: 'form',
      onElicit: () => ({ action: 'accept', content: { method: 'stripe', remember: false } }),
    });
    const result = (await client.callTool({
      name: 'report',
      arguments: { topic: 'dogs', pages: 2 },
    })) as CallToolResult;
    expect(elicitations).toHaveLength(1);
    const form = elicitations[0] as {
      mode?: string;
      message: string;
      requestedSchema: { properties: Record<string, { oneOf?: Array<{ const: string; title: string }> }> };
    };
    expect(form.mode ?? 'form').toBe('form');
    expect(form.message).toContain('$25.00');
    expect(form.requestedSchema.properties['method']?.oneOf?.map((o) => o.const)).toEqual([
      'walleot',
      'stripe',
    ]);
    expect(JSON.stringify(form)).not.toMatch(/https?:\/\//);
    const payment = paymentOf(result)!;
    expect(payment.provider).toBe('stripe');
    expect(creates(world, 'walleot')).toBe(0);
    await payAt(payment.payment_url!);
    const done = (await client.callTool({
      name: 'report',
      arguments: { topic: 'dogs', pages: 2 },
    })) as CallToolResult;
    expect(textOf(done)).toBe('Report on dogs (2 pages)');
    expect(world.runsOf('report')).toBe(1);
  });

  it('decline and cancel of the method choice create no payment at all', async ({ world, connectClient }) => {
    for (const action of ['decline', 'cancel'] as const) {
      world.sandbox.reset();
      const { server } = world.makeServer();
      const { client, close } = await connectClient(server, {
        elicitation: 'form',
        onElicit: () => ({ action }),
      });
      const result = (await client.callTool({ name: 'report', arguments: { topic: 'x' } })) as CallToolResult;
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain('nothing was charged');
      expect(world.sandbox.walleot.requests.entries).toHaveLength(0);
      expect(world.sandbox.stripe.requests.entries).toHaveLength(0);
      await close();
    }
    expect(world.runsOf('report')).toBe(0);
  });

  it('remembers the chosen method for the next call', async ({ world, connectClient }) => {
    const { server } = world.makeServer();
    const { client, elicitations } = await connectClient(server, {
      elicitation: 'form',
      onElicit: () => ({ action: 'accept', content: { method: 'stripe', remember: true } }),
    });
    await client.callTool({ name: 'report', arguments: { topic: 'one' } });
    const second = (await client.callTool({ name: 'report', arguments: { topic: 'two' } })) as CallToolResult;
    expect(elicitations).toHaveLength(1);
    expect(paymentOf(second)?.provider).toBe('stripe');
  });
});

describe('client with form and URL elicitation', () => {
  it('asks, opens the link by URL mode, waits for the payment and returns the result in one call', async ({
    world,
    connectClient,
  }) => {
    const { server } = world.makeServer();
    const { client, elicitations } = await connectClient(server, {
      elicitation: 'form+url',
      onElicit: async (request) => {
        if (request.mode === 'url') {
          await payAt(request.url);
          return { action: 'accept' };
        }
        return { action: 'accept', content: { method: 'stripe' } };
      },
    });
    const result = (await client.callTool({
      name: 'report',
      arguments: { topic: 'owls' },
    })) as CallToolResult;
    expect(textOf(result)).toBe('Report on owls (1 pages)');
    expect(paymentOf(result)?.status).toBe('paid');
    expect(elicitations.map((e) => e.mode ?? 'form')).toEqual(['form', 'url']);
    expect(creates(world, 'stripe')).toBe(1);
    expect(world.runsOf('report')).toBe(1);
  });

  it('declining the link cancels the payment; nothing runs', async ({ world, connectClient }) => {
    const { server } = world.makeServer();
    const { client } = await connectClient(server, {
      elicitation: 'url',
      onElicit: () => ({ action: 'decline' }),
    });
    const result = (await client.callTool({ name: 'status_now', arguments: {} })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(paymentOf(result)?.status).toBe('canceled');
    const session = world.sandbox.stripe.requests.entries.filter((r) => r.path.endsWith('/expire'));
    expect(session).toHaveLength(1);
    expect(world.runsOf('status_now')).toBe(0);
  });
});
