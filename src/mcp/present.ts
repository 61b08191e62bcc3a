import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { IntentRecord, ToolResult } from '../core/intent/record.js';
import type { PaymentStatus } from '../core/intent/status.js';
import { liveAttempt } from '../core/intent/transitions.js';
import { alternativesFor, linkFor, methodLabel } from '../engine/links.js';
import type { Outcome, RefusalReason } from '../engine/pipeline/outcome.js';
import type { RouterCore } from '../engine/runtime.js';
import { LIMIT_META_KEY, limitResult, RECEIPT_META_KEY, receiptInfo } from './limit-result.js';
import {
  amountFor,
  confirmHint,
  endedText,
  pendingText,
  stillPendingText,
  toolFailedText,
  unknownText,
} from './messages.js';
import {
  buildPaymentInfo,
  PAYMENT_META_KEY,
  type PaymentAlternative,
  type PaymentInfo,
  paymentResult,
  type ResultJson,
} from './payment-result.js';
import { withMachineOffers, X402_PAYMENT_RESPONSE_META_KEY, x402PaymentRequired } from './x402.js';

export { LIMIT_META_KEY, RECEIPT_META_KEY };

/** A tool's own result as stored (plain JSON), with payrouter's `_meta`. */
type ToolResultWithMeta = ToolResult & { _meta?: Record<string, unknown> };

/** What `present` needs of the tool the call was for. */
export interface PresentedTool {
  name: string;
  hasOutputSchema: boolean;
}

/** The 1.x SDK's CallToolResult of an outcome. */
export function present(rt: RouterCore, tool: PresentedTool, outcome: Outcome): CallToolResult {
  return presentResult(rt, tool, outcome) as CallToolResult;
}

/**
 * The only place a paid call's result is built: every message is decided here. Plain JSON both
 * SDK lines accept; a ran call's result is the tool's own, with the payment in `_meta`. (The v2
 * layer answers `input_required` outcomes itself, with input requests.)
 */
export function presentResult(
  rt: RouterCore,
  tool: PresentedTool,
  outcome: Outcome,
): ResultJson | ToolResultWithMeta {
  switch (outcome.kind) {
    case 'refused':
      return {
        isError: true,
        content: [{ type: 'text', text: refusalText(tool.name, outcome.reason, outcome.detail) }],
      };
    case 'limited':
      return limitResult(outcome.hit, rt.limits?.clock() ?? Date.now()) as ResultJson;
    case 'ran': {
      const result = outcome.result as ToolResultWithMeta;
      // One copy of the tool's `_meta`: the payment (none for a free call of the allowance), the
      // receipt, and a machine payment's settlement receipt where x402 clients read it.
      const meta: Record<string, unknown> = { ...(result._meta ?? {}) };
      if (outcome.intent.free !== true)
        meta[PAYMENT_META_KEY] = info(rt, outcome.intent, 'paid', 'Done: the tool ran.');
      meta[RECEIPT_META_KEY] = receiptInfo(outcome.intent);
      if (outcome.receipt) meta[X402_PAYMENT_RESPONSE_META_KEY] = outcome.receipt;
      return { ...result, _meta: meta };
    }
    case 'tool_failed': {
      const underWay = outcome.refundUnderWay === true;
      return paymentResult(
        toolFailedText(outcome.intent, outcome.message, outcome.refunded, underWay),
        info(
          rt,
          outcome.intent,
          outcome.refunded ? 'refunded' : 'paid',
          outcome.refunded
            ? 'Nothing to do.'
            : underWay
              ? 'Nothing to do: the refund is under way. confirm_payment with this payment_id shows it as refunded once it is made.'
              : `Retry with confirm_payment (payment_id "${outcome.intent.id}").`,
        ),
        tool.hasOutputSchema,
      );
    }
    case 'ended':
      return paymentResult(
        endedText(outcome.intent, outcome.status),
        info(
          rt,
          outcome.intent,
          outcome.status,
          `Call ${outcome.intent.binding.tool} again to start a new payment.`,
        ),
        tool.hasOutputSchema,
      );
    case 'stopped': {
      const { intent } = outcome;
      const what = outcome.by === 'declined' ? 'You declined the payment' : 'The payment was cancelled';
      const text = outcome.linkOpen
        ? `${what} of ${amountFor(intent)}: "${intent.binding.tool}" did not run and nothing has been charged. This payment method cannot withdraw its link (${linkFor(rt, intent)}); if you pay it after all, ${confirmHint(intent)} to get the result.`
        : `${what} of ${amountFor(intent)}: "${intent.binding.tool}" did not run and nothing was charged.`;
      return paymentResult(
        text,
        info(
          rt,
          intent,
          outcome.linkOpen ? intent.status : 'canceled',
          outcome.linkOpen
            ? `If you pay after all, call confirm_payment.`
            : `Call ${intent.binding.tool} again to pay.`,
        ),
        tool.hasOutputSchema,
      );
    }
    case 'payment_required':
      return required(rt, tool, outcome);
    case 'input_required': {
      // 1.x has no input-required results: the same question goes in a payment-required result.
      const reason = outcome.ask.kind === 'choose' ? 'requires_method' : 'new';
      const pending: Pending = { kind: 'payment_required', intent: outcome.intent, reason };
      return required(rt, tool, pending);
    }
  }
}

export type Pending = Extract<Outcome, { kind: 'payment_required' }>;

/** A payment-required result carrying every eligible offer: the human methods and the machine ones. */
function required(rt: RouterCore, tool: PresentedTool, outcome: Pending): ResultJson {
  // The link and the other methods, worked out once for both the payment object and the text.
  const url = linkFor(rt, outcome.intent);
  const alternatives = alternativesFor(rt, outcome.intent);
  const paymentInfo = pendingInfo(rt, outcome, url, alternatives);
  const result = paymentResult(pendingOf(rt, outcome, url, alternatives), paymentInfo, tool.hasOutputSchema);
  const error =
    outcome.reason === 'credential_rejected'
      ? `Payment not accepted: ${outcome.detail ?? 'invalid payment'}`
      : outcome.reason === 'settlement_failed'
        ? `Payment settlement failed: ${outcome.detail ?? 'settlement_failed'}`
        : undefined;
  return withMachineOffers(
    result,
    x402PaymentRequired(rt, outcome.intent, error),
    paymentInfo,
    tool.hasOutputSchema,
  );
}

function pendingOf(
  rt: RouterCore,
  outcome: Pending,
  url: string,
  alternatives: PaymentAlternative[],
): string {
  const { intent } = outcome;
  const repeat = outcome.repeatOf
    ? `You already paid for this exact call before (payment ${outcome.repeatOf}) and got its result; this is a new purchase.\n`
    : '';
  const machine = liveAttempt(intent)?.action?.kind === 'credential_required';
  switch (outcome.reason) {
    case 'credential_rejected':
      return `The payment sent with this call was not accepted (${outcome.detail ?? 'invalid'}): "${intent.binding.tool}" did not run and nothing was charged. ${machineHint(rt, intent)}`;
    case 'settlement_failed':
      return `"${intent.binding.tool}" ran, but settling its payment failed (${outcome.detail ?? 'unknown reason'}), so its result is withheld and nothing was charged. Retry the same call with a new payment: the result is kept and the tool does not run again.`;
    case 'new':
    case 'resumed':
      if (machine) return repeat + machineHint(rt, intent, alternatives);
  }
  switch (outcome.reason) {
    case 'new':
      return repeat + pendingText(intent, methodLabel(rt, intent), url, alternatives);
    case 'resumed':
      return stillPendingText(intent, url);
    case 'requires_method': {
      const methods = alternatives.map((a) => `"${a.provider}" (${a.label}, ${a.speed})`).join(', ');
      const page = rt.settings.publicUrl ? `\nOr open ${url} to choose and pay.` : '';
      return `${repeat}Payment required: ${amountFor(intent)} for "${intent.binding.tool}". Choose how to pay: call confirm_payment with payment_id "${intent.id}" and method set to one of: ${methods}.${page}\nNothing is charged until you pay.`;
    }
    case 'not_yet':
      return `The payment of ${amountFor(intent)} for "${intent.binding.tool}" is not complete yet.${url ? ` Pay here: ${url}` : ''}\nOnce you have paid, call confirm_payment with payment_id "${intent.id}" again. You will not be charged twice.`;
    case 'timed_out':
      return `Still waiting for the payment of ${amountFor(intent)} for "${intent.binding.tool}".${url ? ` If you have not paid yet, pay here: ${url}` : ''}\nOnce paid, ${confirmHint(intent)}: it will not charge you again.`;
    case 'unknown':
      return unknownText(intent);
    case 'provider_failed':
      return `${outcome.detail ?? 'The payment could not be started.'} Nothing was charged. Call ${intent.binding.tool} again to retry; the same payment will be reused.`;
  }
}

/** What an agent that pays by itself does next, and what a person can do instead. */
function machineHint(
  rt: RouterCore,
  intent: IntentRecord,
  alternatives: PaymentAlternative[] = alternativesFor(rt, intent),
): string {
  const human = alternatives.filter(
    (a) => rt.providerById.get(a.provider)?.capabilities.credential === undefined,
  );
  const others =
    human.length > 0
      ? `\nTo pay another way, call confirm_payment with payment_id "${intent.id}" and method set to one of: ${human.map((a) => `"${a.provider}" (${a.label}, ${a.speed})`).join(', ')}.`
      : '';
  return `Payment required: ${amountFor(intent)} for "${intent.binding.tool}". An agent with an x402 wallet pays this by itself: sign one of the offers above and call ${intent.binding.tool} again with the same arguments and the payment in _meta["x402/payment"]. Nothing is charged unless the tool succeeds.${others}`;
}

export function pendingInfo(
  rt: RouterCore,
  outcome: Pending,
  url: string = linkFor(rt, outcome.intent),
  alternatives: PaymentAlternative[] = alternativesFor(rt, outcome.intent),
): PaymentInfo {
  const { intent } = outcome;
  const status: PaymentStatus = outcome.reason === 'unknown' ? 'unknown' : intent.status;
  return info(rt, intent, status, nextStep(intent, outcome.reason), url, alternatives);
}

/** What to do next, per reason a payment is still required. */
function nextStep(intent: IntentRecord, reason: Pending['reason']): string {
  switch (reason) {
    case 'new':
    case 'resumed':
      return 'Pay at payment_url, then call confirm_payment with this payment_id.';
    case 'requires_method':
      return 'Choose a method: call confirm_payment with this payment_id and method, or open payment_url.';
    case 'not_yet':
      return 'Pay at payment_url, then call confirm_payment with this payment_id again.';
    case 'timed_out':
      return 'Pay at payment_url if not done yet, then call confirm_payment with this payment_id.';
    case 'unknown':
      return 'Call confirm_payment again shortly.';
    case 'provider_failed':
      return `Call ${intent.binding.tool} again to retry.`;
    case 'credential_rejected':
      return `Call ${intent.binding.tool} again with a valid payment, or pay another way.`;
    case 'settlement_failed':
      return `Call ${intent.binding.tool} again with a new payment to get the kept result.`;
  }
}

function info(
  rt: RouterCore,
  intent: IntentRecord,
  status: PaymentStatus,
  next: string,
  url: string = linkFor(rt, intent),
  // Fresh objects of exactly these three fields already: no second copy.
  alternatives: PaymentAlternative[] = alternativesFor(rt, intent),
): PaymentInfo {
  const attempt = intent.attempts.at(-1);
  return buildPaymentInfo(intent, {
    status,
    providerLabel: attempt ? rt.providerById.get(attempt.providerId)?.capabilities.label : undefined,
    url: url === '' ? undefined : url,
    alternatives,
    next,
  });
}

function refusalText(tool: string, reason: RefusalReason, detail: string | undefined): string {
  switch (reason) {
    case 'arguments_too_large':
      return `The arguments of "${tool}" are too large for a paid call. Nothing was charged.`;
    case 'arguments_invalid':
      return `"${tool}" cannot take these arguments for a paid call (${detail ?? 'invalid'}). Nothing was charged.`;
    case 'stored_call_invalid':
      return `This payment's call cannot run: ${detail ?? 'its stored arguments are invalid'}. Nothing ran; your payment is kept and nothing more was charged.`;
    case 'price_failed':
      return `This call of "${tool}" could not be priced (${detail ?? 'unknown error'}). Nothing was charged.`;
    case 'no_method':
      return `${detail ?? 'No payment method can take this charge.'} Nothing was charged.`;
    case 'policy':
      return `Payment refused: ${detail ?? 'not allowed'}. Nothing was charged.`;
    case 'too_many_open':
      return `${detail ?? 'You have too many unpaid payments open; pay or let them expire.'} Nothing was charged.`;
    case 'unknown_payment':
      return `Unknown payment_id "${detail ?? ''}": no payment you can confirm has this id. If you paid it, confirm it from the account that started the payment: it is kept, and nothing is ever charged twice.`;
    case 'tool_unavailable':
      return `The tool "${detail ?? tool}" of this payment is not available on this server. Your payment is kept: confirm it on the server where you started it.`;
    case 'binding_changed':
      return 'This payment was made for a different call (tool or price) than this server now offers, so nothing ran. Your payment is kept and nothing more was charged.';
    case 'method_not_eligible':
      return detail ?? 'That method cannot take this payment.';
    case 'canceled_call':
      return 'The call was canceled before a payment method was chosen. Nothing was charged.';
  }
}
