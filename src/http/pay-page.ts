import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { isFinalStatus, type PaymentStatus } from '../core/intent/status.js';
import type { DeskMethod, DeskPayment, PaymentDesk } from '../engine/desk.js';
import { FORM_BODY_LIMIT, readFormBody } from './body.js';
import { html, page, redirect, type SafeHtml, sendHtml, sendMessagePage } from './html.js';
import { frameOf, notFound, referenceBlock } from './shared.js';

/**
 * The hosted pay page of one intent: who is paid, what for, how much, where it stands, and one
 * button per method. Choosing a method only selects how to pay: amount, tool and binding come
 * from the stored intent and nothing the browser sends can change them. GET never creates a
 * payment; it goes straight to the provider's checkout when the choice is already made.
 */

const choiceSchema = z.object({ method: z.string().min(1).max(100) });
const methodQuerySchema = z.string().min(1).max(100);

export async function showPayPage(
  desk: PaymentDesk,
  id: string,
  query: URLSearchParams,
  res: ServerResponse,
): Promise<void> {
  // A cached, rate-budgeted read: someone coming back after paying sees "paid", not a stale button.
  // An opened pay page is where a payment is most likely made next: its polls go first.
  const payment = await desk.check(id, { opened: true });
  if (payment === undefined) {
    notFound(desk, res);
    return;
  }
  const checkout = straightToCheckout(payment, query);
  if (checkout !== undefined) {
    redirect(res, checkout);
    return;
  }
  sendHtml(res, 200, renderPayPage(desk, payment));
}

/**
 * The provider checkout to send the browser to instead of showing this page: when the payment's
 * live provider payment is the method the link names (a method chosen in the chat), or the only
 * method there is. Never for a payment that is paid or ended.
 */
function straightToCheckout(payment: DeskPayment, query: URLSearchParams): string | undefined {
  const live = payment.live;
  if (isFinalStatus(payment.status) || live === undefined || isFinalStatus(live.status)) return undefined;
  const named = methodQuerySchema.safeParse(query.get('method'));
  const chosen = named.success && named.data === live.providerId;
  const onlyMethod = payment.methods.length === 1 && payment.methods[0]?.providerId === live.providerId;
  return chosen || onlyMethod ? live.checkoutUrl : undefined;
}

export async function choosePayMethod(
  desk: PaymentDesk,
  id: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  // Looked up before the body is read: an unknown payment costs no body parsing.
  const known = await desk.getIntent(id);
  if (known === undefined) {
    notFound(desk, res);
    return;
  }
  const frame = frameOf(desk, known);
  const body = await readFormBody(req, FORM_BODY_LIMIT);
  if (body.kind === 'too_large') {
    sendMessagePage(res, frame, 413, 'Request too large', 'The form sent too much data.');
    return;
  }
  const choice = body.kind === 'fields' ? choiceSchema.safeParse(body.fields) : undefined;
  if (choice === undefined || !choice.success) {
    sendMessagePage(
      res,
      frame,
      400,
      'Choose a payment method',
      html`Pick one of the payment methods on <a href="${desk.payPageUrl(id)}">the payment page</a>.`,
    );
    return;
  }
  const selection = await desk.selectMethod(id, choice.data.method);
  switch (selection.kind) {
    case 'not_found':
      notFound(desk, res);
      return;
    case 'not_available':
      sendMessagePage(
        res,
        frame,
        400,
        'Method not available',
        html`That payment method is not available for this payment. Choose another on <a href="${desk.payPageUrl(id)}">the payment page</a>.`,
      );
      return;
    case 'failed':
      sendMessagePage(
        res,
        frame,
        502,
        'Payment could not be started',
        html`${selection.message} Nothing was charged. <a href="${desk.payPageUrl(id)}">Try again</a>.`,
      );
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
  authorized: 'Your agent paid this; the tool is running. Return to your chat.',
  paid: 'Return to your chat; the tool runs as soon as you confirm the payment there.',
  failed:
    'This payment failed. Nothing was charged and nothing ran. Call the tool again in your chat to retry.',
  canceled: 'This payment was canceled. Nothing was charged. Call the tool again in your chat to start over.',
  expired: 'This payment link expired. Nothing was charged. Call the tool again in your chat to start over.',
  refunded: 'This payment was refunded.',
  unknown:
    'We could not reach the payment provider to check this payment. If you paid, nothing is charged twice; reload this page in a moment.',
};

const HEADING: Record<PaymentStatus, string | undefined> = {
  requires_method: undefined,
  pending: undefined,
  unknown: undefined,
  authorized: 'Paid by your agent',
  paid: 'Paid',
  failed: 'Payment failed',
  canceled: 'Payment canceled',
  expired: 'Payment link expired',
  refunded: 'Payment refunded',
};

function methodButton(
  action: string,
  method: DeskMethod,
  primary: boolean,
  label: string = method.label,
): SafeHtml {
  return html`<form method="post" action="${action}"><input type="hidden" name="method" value="${method.providerId}"><button type="submit" class="${primary ? 'primary' : 'secondary'}" data-method="${method.providerId}" id="method-${method.providerId}"><span class="label">${label}</span> <span class="detail">${method.detail}</span></button></form>`;
}

function methodButtons(desk: PaymentDesk, payment: DeskPayment): SafeHtml[] {
  if (isFinalStatus(payment.status)) return [];
  const action = desk.payPageUrl(payment.id);
  const live = payment.live;
  const continuing =
    live === undefined || isFinalStatus(live.status)
      ? undefined
      : payment.methods.find((m) => m.providerId === live.providerId);
  if (continuing === undefined) return payment.methods.map((m, i) => methodButton(action, m, i === 0));
  const others = payment.methods.filter((m) => m !== continuing);
  return [
    methodButton(action, continuing, true, `Continue to ${continuing.label}`),
    ...(others.length > 0 ? [html`<p class="others">Or pay another way:</p>`] : []),
    ...others.map((m) => methodButton(action, m, false)),
  ];
}

function renderPayPage(desk: PaymentDesk, payment: DeskPayment): string {
  const status = payment.status;
  const heading = HEADING[status];
  const only = payment.methods.length === 1 ? payment.methods[0] : undefined;
  const statusText =
    status === 'paid' && payment.ran
      ? 'Return to your chat; your result is ready.'
      : status === 'requires_method' && only !== undefined
        ? `Pay with ${only.label}.`
        : STATUS_TEXT[status];
  const buttons = methodButtons(desk, payment);
  const what = html`<span id="title">${payment.title}</span>`;
  const body = html`${heading === undefined ? html`<h1 id="heading">${what}</h1>` : html`<h1 id="heading">${heading}</h1>`}
<div class="amount" id="amount">${payment.amountDisplay}</div>
${heading === undefined ? '' : html`<p class="what">for ${what}</p>`}
<p class="status${status === 'paid' ? ' paid' : ''}" id="status" data-status="${status}">${statusText}</p>
${buttons}
${buttons.length > 0 ? html`<p class="note">Nothing is charged until you confirm on the payment provider's page.</p>` : ''}
${referenceBlock(payment)}`;
  const title =
    heading === undefined
      ? `Pay ${payment.amountDisplay} to ${desk.serverName}`
      : `${heading}: ${payment.amountDisplay} to ${desk.serverName}`;
  return page(title, frameOf(desk, payment), body);
}
