import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { isFinalStatus, type PaymentStatus } from '../core/intent/status.js';
import type { DeskMethod, DeskPayment, PaymentDesk } from '../engine/desk.js';
import { FORM_BODY_LIMIT, readFormBody } from './body.js';
import { html, page, redirect, type SafeHtml, sendHtml, sendMessagePage } from './html.js';

/**
 * The hosted pay page of one intent: what is paid for, its status, and one button per eligible
 * method. Choosing a method only selects how to pay: amount, tool and binding come from the
 * stored intent and nothing the browser sends can change them.
 */

const NOT_FOUND_TITLE = 'Payment not found';
const NOT_FOUND_TEXT =
  'This payment link does not exist or has expired. Call the tool again in your chat to start a new payment.';

const choiceSchema = z.object({ method: z.string().min(1).max(100) });

export async function showPayPage(
  desk: PaymentDesk,
  id: string,
  _query: URLSearchParams,
  res: ServerResponse,
): Promise<void> {
  // A cached, rate-budgeted read: someone coming back after paying sees "paid", not a stale button.
  const payment = await desk.check(id);
  if (payment === undefined) {
    sendMessagePage(res, 404, NOT_FOUND_TITLE, NOT_FOUND_TEXT);
    return;
  }
  sendHtml(res, 200, renderPayPage(desk, payment));
}

export async function choosePayMethod(
  desk: PaymentDesk,
  id: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  // Looked up before the body is read: an unknown payment costs no body parsing.
  if ((await desk.getIntent(id)) === undefined) {
    sendMessagePage(res, 404, NOT_FOUND_TITLE, NOT_FOUND_TEXT);
    return;
  }
  const body = await readFormBody(req, FORM_BODY_LIMIT);
  if (body.kind === 'too_large') {
    sendMessagePage(res, 413, 'Request too large', 'The form sent too much data.');
    return;
  }
  const choice = body.kind === 'fields' ? choiceSchema.safeParse(body.fields) : undefined;
  if (choice === undefined || !choice.success) {
    sendMessagePage(
      res,
      400,
      'Choose a payment method',
      'Pick one of the payment methods on the payment page.',
    );
    return;
  }
  const selection = await desk.selectMethod(id, choice.data.method);
  switch (selection.kind) {
    case 'not_found':
      sendMessagePage(res, 404, NOT_FOUND_TITLE, NOT_FOUND_TEXT);
      return;
    case 'not_available':
      sendMessagePage(
        res,
        400,
        'Method not available',
        'That payment method is not available for this payment.',
      );
      return;
    case 'failed':
      sendMessagePage(res, 502, 'Payment could not be started', `${selection.message} Nothing was charged.`);
      return;
    case 'closed':
      redirect(res, desk.payPageUrl(id));
      return;
    case 'selected':
      redirect(res, selection.checkoutUrl ?? desk.payPageUrl(id));
      return;
  }
}

const STATUS_TEXT: Record<PaymentStatus, string> = {
  requires_method: 'Choose how you would like to pay.',
  pending: 'Waiting for your payment.',
  paid: 'Paid — return to your chat.',
  failed:
    'This payment failed. Nothing was charged and nothing ran. Call the tool again in your chat to retry.',
  canceled: 'This payment was canceled. Call the tool again in your chat to start a new payment.',
  expired: 'This payment link expired. Call the tool again in your chat to start a new payment.',
  refunded: 'This payment was refunded.',
  unknown: 'We could not reach the payment provider to check this payment. Reload this page in a moment.',
};

function methodForm(action: string, method: DeskMethod, text: string, primary: boolean): SafeHtml {
  return html`<form method="post" action="${action}"><input type="hidden" name="method" value="${method.providerId}"><button type="submit" class="${primary ? 'primary' : 'secondary'}" data-method="${method.providerId}">${text}</button></form>`;
}

function methodTitle(method: DeskMethod): string {
  return `${method.label}: ${method.detail}`;
}

function renderPayPage(desk: PaymentDesk, payment: DeskPayment): string {
  const action = desk.payPageUrl(payment.id);
  const status = payment.status;
  let buttons: SafeHtml[] = [];
  if (!isFinalStatus(status)) {
    const live = payment.live;
    const continuing =
      live === undefined ? undefined : payment.methods.find((m) => m.providerId === live.providerId);
    if (continuing !== undefined) {
      buttons = [
        methodForm(action, continuing, `Continue to ${continuing.label}`, true),
        ...payment.methods
          .filter((m) => m !== continuing)
          .map((m) => methodForm(action, m, methodTitle(m), false)),
      ];
    } else {
      buttons = payment.methods.map((m, i) => methodForm(action, m, methodTitle(m), i === 0));
    }
  }
  let statusText = STATUS_TEXT[status];
  if (status === 'paid' && payment.ran) statusText = 'Paid — return to your chat; your result is ready.';
  const body = html`<h1>Pay for ${payment.tool}</h1>
<div class="amount" id="amount">${payment.amountDisplay}</div>
<p class="desc" id="description">${payment.title}</p>
<p class="tool">Tool: <span id="tool">${payment.tool}</span></p>
<p class="status" id="status" data-status="${status}">${statusText}</p>
${buttons}
${buttons.length > 0 ? html`<p class="note">Nothing is charged until you confirm on the payment provider's page.</p>` : ''}`;
  return page(`Pay ${payment.amountDisplay} for ${payment.tool}`, body);
}
