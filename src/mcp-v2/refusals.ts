import type { IntentRecord } from '../core/intent/record.js';
import type { RouterCore } from '../engine/runtime.js';
import type { ResultJson } from '../mcp/payment-result.js';

/** Why an echoed requestState was refused. Nothing ran and nothing was charged on any of these. */
export type StateRefusal =
  | { reason: 'malformed' | 'mac' | 'expired' | 'other_call' | 'other_subject' | 'gone' }
  /** Redeemed before, and its call has not run: a replay starts nothing. */
  | { reason: 'used'; intent: IntentRecord | undefined };

/** The `_meta` key naming why a requestState was refused (`invalid_request_state` and the reason). */
export const REQUEST_STATE_ERROR_META_KEY = 'payrouter/error';

/** The result for a refused requestState: what happened, that nothing was charged, what to do. */
export function stateRefusal(_rt: RouterCore, tool: string, refusal: StateRefusal): ResultJson {
  const again = `Call "${tool}" again without requestState to start over.`;
  let text: string;
  switch (refusal.reason) {
    case 'malformed':
    case 'mac':
      text = `Invalid requestState for "${tool}": it was not issued by this server or was altered. Nothing ran and nothing was charged. ${again}`;
      break;
    case 'expired':
      text = `This requestState for "${tool}" has expired. Nothing ran and nothing was charged. ${again}`;
      break;
    case 'other_call':
      text = `This requestState belongs to a different call (another tool or other arguments) than this one. Nothing ran and nothing was charged. ${again}`;
      break;
    case 'other_subject':
      text = `This requestState belongs to another payer. Nothing ran and nothing was charged. ${again}`;
      break;
    case 'gone':
      text = `The payment this requestState names no longer exists (it expired). Nothing ran and nothing was charged. ${again}`;
      break;
    case 'used': {
      const id = refusal.intent?.id;
      text = `This requestState was already used; a requestState is good for one retry only. Nothing ran and nothing was charged for this request.${id ? ` If you paid, call confirm_payment with payment_id "${id}" to get the result without paying again.` : ''} ${again}`;
      break;
    }
  }
  return {
    isError: true,
    content: [{ type: 'text', text }],
    _meta: { [REQUEST_STATE_ERROR_META_KEY]: { code: 'invalid_request_state', reason: refusal.reason } },
  };
}
