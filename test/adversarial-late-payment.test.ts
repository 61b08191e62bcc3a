// A payment the user makes after the call ended without it: the router must not keep that money
// without running the tool or saying so.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect } from 'vitest';
import { it } from './support/fixture.js';
import { storeOf } from './support/http-world.js';
import { payAt, paymentOf, textOf } from './support/paid-server.js';

describe('a Walleot link paid after the user declined it', () => {
  it('is noticed by confirm_payment: the tool runs (or the user is told the truth), never "nothing was charged"', async ({
    world,
    connectClient,
  }) => {
    const { server, router } = world.makeServer();
    const { client } = await connectClient(server, {
      elicitation: 'url',
      onElicit: () => ({ action: 'decline' }),
    });
    const declined = (await client.callTool({
      name: 'process_data',
      arguments: { data: 'late' },
    })) as CallToolResult;
    const payment = paymentOf(declined)!;
    expect(textOf(declined)).toContain('You declined the payment');
    const intent = (await storeOf(router).get(payment.payment_id))!;
    const session = world.sandbox.walleot.getSession(intent.attempts[0]!.paymentId)!;
    // Walleot cannot cancel a session: the link the user saw still takes money.
    expect(session.status).toBe('pending');
    await payAt(`${world.sandbox.walleot.origin}/checkout/${session.id}`);
    expect(world.sandbox.walleot.getSession(session.id)?.status).toBe('paid');

    const after = (await client.callTool({
      name: 'confirm_payment',
      arguments: { payment_id: payment.payment_id },
    })) as CallToolResult;
    // Today: "The payment of $0.25 … was canceled. Nothing was charged for it and the tool did not
    // run." while Walleot holds the user's $0.25: the canceled intent is final, so no status read
    // is ever made again.
    expect(textOf(after)).not.toContain('Nothing was charged');
    expect(textOf(after)).toBe('Processed: late');
    expect(world.runsOf('process_data')).toBe(1);
  });
});
