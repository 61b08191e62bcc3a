import type { McpServer, RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { ToolExtra } from './subject.js';

export const CONFIRM_PAYMENT_TOOL = 'confirm_payment';

/** Its config, the same for both SDK lines (a zod object schema both accept). */
export const CONFIRM_PAYMENT_CONFIG = {
  title: 'Confirm payment',
  description:
    "Confirm a payment started by a paid tool and get that tool's result. Call it after paying at payment_url. " +
    'Pass method (one of the methods listed with the payment) to choose or switch how to pay; otherwise null.',
  // Strict and portable: no unknown arguments, every property listed as required (OpenAI-style strict schemas).
  inputSchema: z
    .object({
      payment_id: z.string().min(1).max(100).describe('The payment_id from the payment-required result'),
      // Listed as required (strict tool-schema rules), yet a client that leaves it out is not refused.
      method: z
        .preprocess((value) => (value === undefined ? null : value), z.string().min(1).max(64).nullable())
        .describe('Choose or switch to this payment method before paying, or null'),
    })
    .strict(),
  annotations: {
    title: 'Confirm payment',
    readOnlyHint: false,
    idempotentHint: true,
    openWorldHint: true,
  },
};

/**
 * `confirm_payment({ payment_id, method? })`: for clients without elicitation. Confirms the payment,
 * runs the call it was made for (once) and returns its result; `method` switches to another
 * eligible payment method before paying.
 */
export function registerConfirmPaymentTool(
  register: McpServer['registerTool'],
  confirm: (paymentId: string, method: string | undefined, extra: ToolExtra) => Promise<CallToolResult>,
): RegisteredTool {
  return register(CONFIRM_PAYMENT_TOOL, CONFIRM_PAYMENT_CONFIG, async ({ payment_id, method }, extra) =>
    confirm(payment_id, method ?? undefined, extra),
  );
}
