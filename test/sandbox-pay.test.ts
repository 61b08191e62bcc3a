import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect } from 'vitest';
import { type ConnectClient, it } from './support/fixture.js';
import type { HttpWorld } from './support/http-world.js';
import { paymentOf, textOf } from './support/paid-server.js';

/** `sandbox.pay(paymentUrl)`: a test plays the payer behind any link a paid call hands out. */

async function twoStep(
  connectClient: ConnectClient,
  made: ReturnType<HttpWorld['makeServer']>,
  name: string,
  args: Record<string, unknown>,
) {
  const connection = await connectClient(made.server, { elicitation: 'none' });
  const required = (await connection.client.callTool({ name, arguments: args })) as CallToolResult;
  const payment = paymentOf(required)!;
  const confirm = async () =>
    (await connection.client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id },
    })) as CallToolResult;
  return { ...connection, payment, confirm };
}

describe('sandbox.pay', () => {
  it('pays a stand-in checkout link (payment_url without publicUrl)', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const call = await twoStep(connectClient, world.makeServer(), 'process_data', { data: 'x' });
    expect(call.payment.payment_url).toMatch(new RegExp(`^${world.sandbox.walleot.origin}/checkout/`));
    const paid = await world.sandbox.pay(call.payment.payment_url!);
    expect(paid.checkoutUrl).toBe(call.payment.payment_url);
    expect(textOf(await call.confirm())).toBe('Processed: x');
    expect(world.runsOf('process_data')).toBe(1);
    await call.close();
  });

  it('chooses the method on a hosted pay page, then pays at that provider', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const call = await twoStep(connectClient, world.makeHttpServer(), 'report', { topic: 'tides' });
    expect(call.payment.payment_url).toBe(`${world.publicUrl}/pay/${call.payment.payment_id}`);
    const paid = await world.sandbox.pay(call.payment.payment_url!, { method: 'stripe' });
    const sessionId = /\/checkout\/(cs_test_\w+)$/.exec(paid.checkoutUrl)?.[1];
    expect(world.sandbox.stripe.getSession(sessionId!)).toMatchObject({
      status: 'complete',
      payment_status: 'paid',
    });
    // Stripe sends the browser back to the router's return page.
    expect(paid.returnUrl).toBe(`${world.publicUrl}/return/${call.payment.payment_id}?outcome=success`);
    expect(textOf(await call.confirm())).toBe('Report on tides (1 pages)');
    expect(world.runsOf('report')).toBe(1);
    await call.close();
  });

  it('without a method, takes the first one the hosted page offers', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const call = await twoStep(connectClient, world.makeHttpServer(), 'report', { topic: 'reefs' });
    const paid = await world.sandbox.pay(call.payment.payment_url!);
    expect(paid.checkoutUrl.startsWith(world.sandbox.walleot.origin)).toBe(true);
    expect(textOf(await call.confirm())).toBe('Report on reefs (1 pages)');
    // Paid: the page offers nothing more to pay.
    await expect(world.sandbox.pay(call.payment.payment_url!)).rejects.toThrow(/offers no payment method/);
    await call.close();
  });

  it('cancels when asked, and refuses links that lead to no checkout of this sandbox', async ({
    httpWorld: world,
    connectClient,
  }) => {
    const call = await twoStep(connectClient, world.makeServer(), 'process_data', { data: 'y' });
    await world.sandbox.pay(call.payment.payment_url!, { outcome: 'cancel' });
    const sessionId = call.payment.payment_url!.split('/').at(-1)!;
    expect(world.sandbox.walleot.getSession(sessionId)?.status).toBe('cancelled');
    expect(world.runsOf('process_data')).toBe(0);

    await expect(world.sandbox.pay('not a url')).rejects.toThrow(TypeError);
    await expect(
      world.sandbox.pay(`${world.publicUrl}/pay/pay_doesnotexist`, { method: 'stripe' }),
    ).rejects.toThrow(/did not lead to a sandbox checkout page/);
    await call.close();
  });
});
