import { createHash } from 'node:crypto';

/** The reference a payer keeps for one payment: derived from the intent, revealing nothing of its id. */
export function receiptOf(intentId: string): string {
  return `rcpt_${createHash('sha256').update(`payrouter-receipt:${intentId}`).digest('base64url').slice(0, 22)}`;
}
