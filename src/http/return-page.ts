import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { receiptOf } from '../core/receipt.js';
import type { DeskPayment, PaymentDesk } from '../engine/desk.js';
import { html, page, type SafeHtml, sendHtml } from './html.js';
import { frameOf, notFound, referenceBlock } from './shared.js';

/**
 * `GET {base}/return/:id?outcome=success|cancel`: where providers send the user back. One
 * immediate status read; when it finds the payment paid, the store publishes the change and every
 * call waiting for this intent (on any instance) wakes at once.
 */

const outcomeSchema = z.enum(['success', 'cancel']);

export async function showReturnPage(
  desk: PaymentDesk,
  id: string,
  query: URLSearchParams,
  res: ServerResponse,
): Promise<void> {
  const payment = await desk.check(id, { fresh: true });
  if (payment === undefined) {
    notFound(desk, res);
    return;
  }
  const parsedOutcome = outcomeSchema.safeParse(query.get('outcome'));
  const outcome = parsedOutcome.success ? parsedOutcome.data : undefined;
  sendHtml(res, 200, renderReturnPage(desk, payment, outcome));
}

function renderReturnPage(
  desk: PaymentDesk,
  payment: DeskPayment,
  outcome: 'success' | 'cancel' | undefined,
): string {
  const status = payment.status;
  const payLink = (text: string) =>
    html`<a class="button" id="pay-page" href="${desk.payPageUrl(payment.id)}">${text}</a>`;
  let title: string;
  let message: string;
  let after: SafeHtml | string = '';
  switch (status) {
    case 'paid':
      title = 'Paid';
      message = payment.ran
        ? 'Payment received. Return to your chat; your result is ready.'
        : 'Payment received. Return to your chat: the tool runs now, or as soon as you confirm the payment there.';
      // The receipt the payer keeps: the same reference the ledger and the tool result carry.
      after = html`<p class="what">Receipt: <code id="receipt">${receiptOf(payment.id)}</code> (keep it for support)</p>`;
      break;
    case 'failed':
    case 'canceled':
    case 'expired':
    case 'refunded':
      title = `Payment ${status}`;
      message = `This payment ${status === 'expired' ? 'expired' : `was ${status}`}. Nothing ran. Call the tool again in your chat to start over.`;
      break;
    case 'unknown':
      title = 'Payment not confirmed yet';
      message =
        'We could not reach the payment provider to confirm your payment. If you paid, your chat will pick it up shortly; nothing is charged twice.';
      after = payLink('Back to the payment page');
      break;
    default:
      title = 'Payment not completed yet';
      message =
        outcome === 'cancel'
          ? 'You left the checkout before paying. Nothing was charged.'
          : 'The payment provider has not confirmed a payment yet. If you just paid, reload this page in a moment.';
      after = payLink(outcome === 'cancel' ? 'Choose how to pay' : 'Back to the payment page');
  }
  const body = html`<h1 id="heading">${title}</h1>
<div class="amount" id="amount">${payment.amountDisplay}</div>
<p class="what">for <span id="title">${payment.title}</span></p>
<p class="status${status === 'paid' ? ' paid' : ''}" id="status" data-status="${status}">${message}</p>
${after}
${referenceBlock(payment)}`;
  return page(`${title}: ${payment.amountDisplay} to ${desk.serverName}`, frameOf(desk, payment), body);
}
