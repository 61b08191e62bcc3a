import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect } from 'vitest';
import { z } from 'zod';
import type { PaymentFlow } from '../src/index.js';
import { it } from './support/fixture.js';
import { type Elicitation, payAt, paymentOf, textOf } from './support/paid-server.js';

const clients: Elicitation[] = ['none', 'form', 'url', 'form+url'];
const flows: PaymentFlow[] = ['auto', 'elicitation', 'two_step'];

/**
 * Every client kind under every flow, for a tool without an input schema and one with a full zod
 * object schema: the user pays once, the tool runs once, and the result arrives either in the call
 * itself (the link was delivered by elicitation) or through confirm_payment.
 */
describe.each(flows)('flow %s', (flow) => {
  it.for(clients)(
    'client with elicitation "%s": both tool shapes pay and run once',
    async (elicitation, { world, connectClient }) => {
      const { server } = world.makeServer({ flow });
      server.registerTool(
        'no_args',
        { description: 'No input schema', price: { amount: '0.05', currency: 'USD' } },
        async () => {
          world.runs.push({ tool: 'no_args', args: {}, hasSignal: true });
          return { content: [{ type: 'text', text: 'no args ran' }] };
        },
      );
      server.registerTool(
        'zod_object',
        {
          description: 'Full zod object',
          inputSchema: z.object({ q: z.string().min(1), n: z.number().int().default(2) }),
          price: { amount: '0.05', currency: 'USD' },
        },
        async ({ q, n }) => {
          world.runs.push({ tool: 'zod_object', args: { q, n }, hasSignal: true });
          return { content: [{ type: 'text', text: `${q} x${n}` }] };
        },
      );
      const { client, elicitations } = await connectClient(server, {
        elicitation,
        onElicit: async (request) => {
          if (request.mode === 'url') {
            await payAt(request.url);
            return { action: 'accept' };
          }
          // The opt-in form that carries the link: pay it, then submit.
          const link = /(https?:\/\/\S+)/.exec(request.message)?.[1];
          if (link) await payAt(link);
          const content: Record<string, string | boolean> = link ? { paid: true } : { method: 'walleot' };
          return { action: 'accept', content };
        },
      });

      for (const [name, args, expected] of [
        ['no_args', {}, 'no args ran'],
        ['zod_object', { q: 'hi' }, 'hi x2'],
      ] as const) {
        const first = (await client.callTool({ name, arguments: args })) as CallToolResult;
        let result = first;
        if (first.isError) {
          const payment = paymentOf(first)!;
          expect(payment.status).toBe('pending');
          await payAt(payment.payment_url!);
          result = (await client.callTool({
            name: 'confirm_payment',
            arguments: { payment_id: payment.payment_id },
          })) as CallToolResult;
        }
        expect(textOf(result)).toBe(expected);
        expect(world.runsOf(name)).toBe(1);

        const deliveredInCall = !first.isError;
        const canUrl = elicitation === 'url' || elicitation === 'form+url';
        const canForm = elicitation === 'form' || elicitation === 'form+url';
        const expectInCall = flow !== 'two_step' && (canUrl || (flow === 'elicitation' && canForm));
        expect(deliveredInCall).toBe(expectInCall);
      }
      expect(world.sandbox.walleot.requests.entries.filter((r) => r.method === 'POST')).toHaveLength(2);
      if (elicitation === 'none') expect(elicitations).toHaveLength(0);
    },
  );
});
