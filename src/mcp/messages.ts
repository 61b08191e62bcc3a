import type { IntentRecord } from '../core/intent/record.js';
import { intentMoney } from '../core/intent/record.js';
import type { PaymentStatus } from '../core/intent/status.js';
import { formatMoney } from '../core/money/money.js';
import type { PaymentAlternative } from './payment-result.js';

/** User-facing sentences. Short, exact about money, and always saying what to do next. */

export function amountFor(intent: IntentRecord): string {
  return formatMoney(intentMoney(intent));
}

export function choiceQuestion(intent: IntentRecord): string {
  return `"${intent.binding.tool}" costs ${amountFor(intent)}. How would you like to pay?`;
}

export function urlConsentMessage(intent: IntentRecord, methodLabel: string): string {
  return `Pay ${amountFor(intent)} for "${intent.binding.tool}" with ${methodLabel}. Nothing is charged until you confirm on the payment page.`;
}

export function formLinkMessage(intent: IntentRecord, methodLabel: string, url: string): string {
  return `Pay ${amountFor(intent)} for "${intent.binding.tool}" with ${methodLabel}: ${url}\nSubmit this form once you have paid.`;
}

export function confirmHint(intent: IntentRecord): string {
  // A stateless request's payer is a stranger to the next request: only the payment id finds the payment.
  if (intent.binding.subject.startsWith('request:'))
    return `call confirm_payment with payment_id "${intent.id}"`;
  return `call confirm_payment with payment_id "${intent.id}" (or call ${intent.binding.tool} again with the same arguments)`;
}

export function pendingText(
  intent: IntentRecord,
  methodLabel: string,
  url: string,
  alternatives: PaymentAlternative[],
): string {
  const lines = [
    `Payment required: ${amountFor(intent)} for "${intent.binding.tool}", paid with ${methodLabel}.`,
    `Open this link to pay: ${url}`,
    `When you have paid, ${confirmHint(intent)}. Nothing is charged until you pay.`,
  ];
  if (alternatives.length > 0) {
    const list = alternatives.map((a) => `"${a.provider}" (${a.label}, ${a.speed})`).join(', ');
    lines.push(
      `To pay another way, call confirm_payment with payment_id "${intent.id}" and method set to one of: ${list}.`,
    );
  }
  return lines.join('\n');
}

export function stillPendingText(intent: IntentRecord, url: string): string {
  return `The payment of ${amountFor(intent)} for "${intent.binding.tool}" is not complete yet. Pay here: ${url}\nThen ${confirmHint(intent)}.`;
}

export function unknownText(intent: IntentRecord): string {
  return `We could not reach the payment provider to confirm the payment of ${amountFor(intent)}. Nothing has run and nothing more will be charged. Try confirm_payment with payment_id "${intent.id}" again in a moment.`;
}

export function endedText(intent: IntentRecord, status: PaymentStatus): string {
  const what: Record<string, string> = {
    failed: 'failed',
    canceled: 'was canceled',
    expired: 'expired',
    refunded: 'was refunded',
  };
  return `The payment of ${amountFor(intent)} for "${intent.binding.tool}" ${what[status] ?? status}. Nothing was charged for it and the tool did not run. Call ${intent.binding.tool} again to start a new payment.`;
}

export function declinedText(intent: IntentRecord): string {
  return `Payment declined: "${intent.binding.tool}" did not run and nothing was charged.`;
}

export function declinedOpenText(intent: IntentRecord, url: string): string {
  return `Payment declined: "${intent.binding.tool}" did not run and nothing has been charged. This payment method cannot withdraw the link (${url}); if you pay it after all, ${confirmHint(intent)} to get the result.`;
}

export function toolFailedText(
  intent: IntentRecord,
  message: string,
  refunded: boolean,
  refundUnderWay = false,
): string {
  const failed = `"${intent.binding.tool}" failed: ${message}\nYour payment of ${amountFor(intent)}`;
  if (refunded) return `${failed} has been refunded.`;
  if (refundUnderWay)
    return `${failed} is being refunded: the refund was decided and is being made. Nothing more is charged and the tool does not run again for this payment.`;
  return `${failed} is kept: ${confirmHint(intent)} to retry without paying again.`;
}
