import type { IncomingMessage, ServerResponse } from 'node:http';
import type Stripe from 'stripe';
import { readBody, redirect, renderCheckoutPage, sendHtml } from './harness.js';
import { SESSION_ID_PATTERN } from './stripe-ids.js';
import type { StripeSessionStore } from './stripe-state.js';
import { formatAmount, stripeExponent } from './tables.js';

/**
 * The hosted checkout page of the Stripe stand-in: `GET /checkout/{id}` shows amount and product,
 * `POST /checkout/{id}/pay` pays by card and follows `success_url` (with `{CHECKOUT_SESSION_ID}`
 * filled in), `POST /checkout/{id}/cancel` follows `cancel_url` and leaves the session open, as
 * Stripe does.
 */

const BRAND = 'Stripe Checkout (sandbox)';

export async function handleCheckoutPage(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  sessions: StripeSessionStore,
): Promise<void> {
  const match = /^\/checkout\/([^/]+)(?:\/(pay|cancel))?$/.exec(path);
  const id = match?.[1];
  const session = id !== undefined && SESSION_ID_PATTERN.test(id) ? sessions.snapshot(id, false) : undefined;
  if (match === null || id === undefined || session === undefined) {
    sendHtml(res, 404, '<!doctype html><title>Not found</title><p>This checkout link does not exist.</p>');
    return;
  }
  const pagePath = `/checkout/${id}`;
  const action = match[2];
  if (action === undefined) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendHtml(res, 405, '<!doctype html><title>Method not allowed</title><p>Method not allowed.</p>', {
        allow: 'GET',
      });
      return;
    }
    sendHtml(res, 200, renderPage(session, sessions));
    return;
  }
  if (req.method !== 'POST') {
    redirect(res, pagePath);
    return;
  }
  await readBody(req, 16 * 1024).catch(() => '');
  if (action === 'pay') {
    if (session.status !== 'open') {
      redirect(res, pagePath);
      return;
    }
    const paid = sessions.pay(id);
    const success = paid.success_url;
    redirect(res, success === null ? pagePath : success.split('{CHECKOUT_SESSION_ID}').join(id));
    return;
  }
  redirect(res, session.cancel_url ?? pagePath);
}

function renderPage(session: Stripe.Checkout.Session, sessions: StripeSessionStore): string {
  const items = sessions.details(session.id)?.lineItems ?? [];
  const description =
    items.map((li) => (li.quantity === 1 ? li.name : `${li.name} × ${li.quantity}`)).join(', ') || 'Payment';
  const amountText =
    session.amount_total === null || session.currency === null
      ? `${session.amount_total ?? 0} ${session.currency ?? ''}`
      : formatAmount(session.amount_total, stripeExponent(session.currency), session.currency);
  return renderCheckoutPage({
    brand: BRAND,
    amountText,
    description,
    statusText: statusText(session),
    actionBase: `/checkout/${session.id}`,
    open: session.status === 'open',
  });
}

function statusText(session: Stripe.Checkout.Session): string {
  if (session.status === 'open') return 'Awaiting payment.';
  if (session.status === 'expired') return 'This checkout session has expired.';
  if (session.payment_status === 'paid') return 'Paid. You can close this page.';
  return 'Payment submitted; awaiting confirmation from your bank.';
}
