import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { DeskPayment, PaymentDesk } from '../engine/desk.js';
import { html, page, sendHtml, sendMessagePage } from './html.js';

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
    sendMessagePage(
      res,
      404,
      'Payment not found',
      'This payment does not exist or has expired. Call the tool again in your chat to start a new payment.',
    );
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
  const payLink = html`<p><a id="pay-page" href="${desk.payPageUrl(payment.id)}">Back to the payment page</a></p>`;
  const what = html`<p class="desc">${payment.amountDisplay} for <span id="tool">${payment.tool}</span></p>`;
  let title: string;
  let body: ReturnType<typeof html>;
  switch (status) {
    case 'paid':
      title = 'Payment received';
      body = html`<h1>${title}</h1>${what}<p class="status" id="status" data-status="paid">${
        payment.ran
          ? 'Return to your chat; your result is ready.'
          : 'Return to your chat; the tool is running (or runs as soon as you confirm the payment there).'
      }</p>`;
      break;
    case 'failed':
    case 'canceled':
    case 'expired':
    case 'refunded':
      title = `Payment ${status}`;
      body = html`<h1>${title}</h1>${what}<p class="status" id="status" data-status="${status}">This payment ${
        status === 'expired' ? 'expired' : `was ${status}`
      }. Nothing ran. Call the tool again in your chat to start a new payment.</p>`;
      break;
    case 'unknown':
      title = 'Payment not confirmed yet';
      body = html`<h1>${title}</h1>${what}<p class="status" id="status" data-status="unknown">We could not reach the payment provider to confirm your payment. If you paid, your chat will pick it up shortly; nothing is charged twice.</p>${payLink}`;
      break;
    default:
      title = 'Payment not completed yet';
      body = html`<h1>${title}</h1>${what}<p class="status" id="status" data-status="${status}">${
        outcome === 'cancel' ? 'You left the checkout before paying. ' : ''
      }The payment provider has not confirmed a payment yet. If you just paid, reload this page in a moment.</p>${payLink}`;
  }
  return page(title, body);
}
