import type { ServerResponse } from 'node:http';
import type { DeskPayment, PaymentDesk } from '../engine/desk.js';
import { html, type PageFrame, type SafeHtml, sendMessagePage } from './html.js';

/** The banner and name around a page: test mode as the payment's providers say, else the router's. */
export function frameOf(desk: PaymentDesk, payment: DeskPayment | undefined): PageFrame {
  return { serverName: desk.serverName, testMode: payment?.testMode ?? desk.testMode };
}

/**
 * A payment this server cannot find: its link expired, or the server restarted and forgot it.
 * The payer may have paid, so the page never offers a second payment: it sends them back to the
 * chat, where confirming the payment they made still works.
 */
export function notFound(desk: PaymentDesk, res: ServerResponse): void {
  sendMessagePage(
    res,
    frameOf(desk, undefined),
    404,
    'Payment not found',
    'We cannot find this payment here: its link may have expired, or the server was restarted. If you paid, return to your chat and confirm the payment there. If you did not pay, nothing was charged.',
  );
}

/** The references a payer keeps: the payment id the chat knows, and the provider's own once paid. */
export function referenceBlock(payment: DeskPayment): SafeHtml {
  const provider = payment.paidWith;
  return html`<div class="reference"><p>Payment reference: <code id="reference">${payment.id}</code></p>${
    provider === undefined
      ? ''
      : html`<p>${provider.label} reference: <code id="provider-reference">${provider.reference}</code></p>`
  }</div>`;
}
