import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { IntentRecord } from '../core/intent/record.js';
import { formatMoney, toDecimalString } from '../core/money/money.js';
import { receiptOf } from '../engine/ledger/ledger.js';
import type { LimitHit } from '../engine/limits/limits.js';

/** The `_meta` key of a refusal over a spend cap, call quota or free allowance. */
export const LIMIT_META_KEY = 'payrouter/limit';
/** The `_meta` key of the receipt reference a payer keeps for a run. */
export const RECEIPT_META_KEY = 'payrouter/receipt';

/** The machine-readable limit in `_meta['payrouter/limit']`. */
export interface LimitInfo {
  kind: LimitHit['kind'];
  scope: LimitHit['scope'];
  tool: string | null;
  /** Spend: exact decimal strings in `currency`; calls: counts as strings. */
  limit: string;
  used: string;
  currency: string | null;
  period: LimitHit['period'];
  window_ms: number | null;
  /** ISO 8601: when budget frees. */
  resets_at: string;
}

export interface ReceiptInfo {
  receipt: string;
  payment_id: string;
  amount: string;
  currency: string;
  free: boolean;
}

export function limitResult(hit: LimitHit, now: number): CallToolResult {
  const money = (minor: number) => ({ minor, currency: hit.currency ?? 'USD' });
  const info: LimitInfo = {
    kind: hit.kind,
    scope: hit.scope,
    tool: hit.tool ?? null,
    limit: hit.kind === 'spend' ? toDecimalString(money(hit.limit)) : String(hit.limit),
    used: hit.kind === 'spend' ? toDecimalString(money(hit.used)) : String(hit.used),
    currency: hit.currency ?? null,
    period: hit.period,
    window_ms: hit.windowMs ?? null,
    resets_at: new Date(hit.resetsAt).toISOString(),
  };
  return {
    isError: true,
    content: [{ type: 'text', text: limitText(hit, now) }],
    _meta: { [LIMIT_META_KEY]: info },
  };
}

function limitText(hit: LimitHit, now: number): string {
  const per = hit.period === 'rolling' ? `in any ${spoken(hit.windowMs ?? 0)}` : `per ${hit.period} (UTC)`;
  const whose = hit.scope === 'global' ? 'across all users of this server' : 'for you on this server';
  const forTool = hit.tool ? ` for "${hit.tool}"` : '';
  const what =
    hit.kind === 'spend'
      ? `Spending limit reached: ${formatMoney({ minor: hit.used, currency: hit.currency ?? 'USD' })} of ${formatMoney({ minor: hit.limit, currency: hit.currency ?? 'USD' })} ${per} ${whose}${forTool}, and this call would pass it.`
      : hit.kind === 'calls'
        ? `Call limit reached: ${hit.used} of ${hit.limit} calls ${per} ${whose}${forTool}.`
        : `Free allowance used: ${hit.used} of ${hit.limit} free calls ${per}${forTool}.`;
  const wait = Math.max(0, hit.resetsAt - now);
  return `${what} It resets at ${new Date(hit.resetsAt).toISOString()} (in ${spoken(wait)}). This is a limit, not a payment request: nothing was created or charged.`;
}

export function receiptInfo(intent: IntentRecord): ReceiptInfo {
  const free = intent.free === true;
  const money = { minor: free ? 0 : intent.binding.amount, currency: intent.binding.currency };
  return {
    receipt: receiptOf(intent.id),
    payment_id: intent.id,
    amount: toDecimalString(money),
    currency: money.currency,
    free,
  };
}

/** A duration as a person says it: "45 seconds", "12 minutes", "3 hours", "2 days". */
function spoken(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 120) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} minutes`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hours`;
  return `${Math.round(h / 24)} days`;
}
