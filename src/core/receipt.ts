import { hash } from 'node:crypto';
import { joined } from './ids.js';

/** Receipts of the payments seen last: one call asks for its receipt up to three times (ledger, result). */
const recent = new Map<string, string>();
const RECENT_RECEIPTS = 256;

/** The reference a payer keeps for one payment: derived from the intent, revealing nothing of its id. */
export function receiptOf(intentId: string): string {
  let receipt = recent.get(intentId);
  if (receipt === undefined) {
    receipt = joined('rcpt_', hash('sha256', `payrouter-receipt:${intentId}`, 'base64url').slice(0, 22));
    if (recent.size >= RECENT_RECEIPTS) recent.clear();
    recent.set(intentId, receipt);
  }
  return receipt;
}
