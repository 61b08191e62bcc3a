import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { EligibleProvider } from '../core/route/route.js';
import type { ToolExtra } from './subject.js';

export type MethodChoice =
  | { kind: 'chosen'; providerId: string; remember: boolean }
  | { kind: 'declined' }
  | { kind: 'canceled' };

/** The option title: method, fee and speed, so the user can compare at a glance. */
export function methodTitle(option: EligibleProvider): string {
  const fee = option.feeMinor === 0 ? 'no fee' : `${option.feeLabel} fee`;
  const speed = option.instant ? 'instant' : 'opens a checkout page';
  return `${option.label}: ${fee}, ${speed}`;
}

/**
 * Ask the user how to pay with a titled single-select plus "remember". The form holds no link:
 * links go through URL mode or the result, as the spec advises.
 */
export async function askForMethod(
  server: McpServer,
  extra: ToolExtra,
  options: { message: string; eligible: EligibleProvider[]; timeoutMs: number },
): Promise<MethodChoice> {
  const ids = options.eligible.map((e) => e.providerId);
  const result = await server.server.elicitInput(
    {
      mode: 'form',
      message: options.message,
      requestedSchema: {
        type: 'object',
        properties: {
          method: {
            type: 'string',
            title: 'Payment method',
            oneOf: options.eligible.map((e) => ({ const: e.providerId, title: methodTitle(e) })),
            default: ids[0],
          },
          remember: { type: 'boolean', title: 'Use this method next time', default: false },
        },
        required: ['method'],
      },
    },
    { relatedRequestId: extra.requestId, signal: extra.signal, timeout: options.timeoutMs },
  );
  if (result.action === 'decline') return { kind: 'declined' };
  if (result.action !== 'accept') return { kind: 'canceled' };
  const content = z
    .object({ method: z.enum(ids as [string, ...string[]]), remember: z.boolean().optional() })
    .safeParse(result.content ?? {});
  // A client that accepts with an invalid answer has not chosen anything we can act on.
  if (!content.success) return { kind: 'canceled' };
  return { kind: 'chosen', providerId: content.data.method, remember: content.data.remember === true };
}
