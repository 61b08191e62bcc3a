import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { ProviderError } from '../core/errors.js';
import type { IntentRecord } from '../core/intent/record.js';
import { intentMoney } from '../core/intent/record.js';
import { isFinalStatus, type PaymentStatus } from '../core/intent/status.js';
import { liveAttempt } from '../core/intent/transitions.js';
import { formatMoney } from '../core/money/money.js';
import { feeFor } from '../core/route/fees.js';
import type { EligibleProvider } from '../core/route/route.js';
import { selectMethod } from '../engine/attempts.js';
import type { RouterCore } from '../engine/runtime.js';
import { methodTitle } from '../mcp/interaction/live.js';
import { FORM_BODY_LIMIT, readFormBody } from './body.js';
import { html, page, redirect, type SafeHtml, sendHtml, sendMessagePage } from './html.js';
import { intentForPage, payPageUrl } from './intent-lookup.js';

/**
 * The hosted pay page of one intent: what is paid for, its status, and one button per eligible
 * method. Choosing a method only selects how to pay: amount, tool and binding come from the
 * stored intent and nothing the browser sends can change them.
 */

const NOT_FOUND_TITLE = 'Payment not found';
const NOT_FOUND_TEXT =
  'This payment link does not exist or has expired. Call the tool again in your chat to start a new payment.';

const choiceSchema = z.object({ method: z.string().min(1).max(100) });

export async function showPayPage(core: RouterCore, id: string, res: ServerResponse): Promise<void> {
  const stored = await intentForPage(core, id);
  if (stored === undefined) {
    sendMessagePage(res, 404, NOT_FOUND_TITLE, NOT_FOUND_TEXT);
    return;
  }
  let intent = stored;
  let status: PaymentStatus = stored.status;
  if (!isFinalStatus(stored.status) && liveAttempt(stored) !== undefined) {
    // A cached, rate-budgeted read: someone coming back after paying sees "paid", not a stale button.
    const checked = await core.confirmation.check(stored.id);
    if (checked !== undefined) {
      intent = checked.intent;
      status = checked.status;
    }
  }
  sendHtml(res, 200, renderPayPage(core, intent, status));
}

export async function choosePayMethod(
  core: RouterCore,
  id: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const intent = await intentForPage(core, id);
  if (intent === undefined) {
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
  const method = choice.data.method;
  if (!intent.eligible.includes(method) || !core.providerById.has(method)) {
    sendMessagePage(
      res,
      400,
      'Method not available',
      'That payment method is not available for this payment.',
    );
    return;
  }
  if (isFinalStatus(intent.status)) {
    redirect(res, payPageUrl(core, intent.id));
    return;
  }

  let selected: IntentRecord;
  try {
    selected = await selectMethod(core, intent, method);
  } catch (error) {
    if (!(error instanceof ProviderError)) throw error;
    core.logger.warn('pay page: starting the payment failed', {
      intentId: intent.id,
      providerId: method,
      error,
    });
    sendMessagePage(res, 502, 'Payment could not be started', `${error.userMessage} Nothing was charged.`);
    return;
  }
  const attempt = liveAttempt(selected);
  const checkout =
    attempt?.providerId === method && !isFinalStatus(selected.status) ? attempt.url : undefined;
  redirect(res, checkout !== undefined && isWebUrl(checkout) ? checkout : payPageUrl(core, intent.id));
}

/** Only http(s) checkout links are followed: a provider answer must not send the browser elsewhere. */
function isWebUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

/** The eligible methods this instance can offer, with fee and speed as in the method-choice titles. */
function methodOptions(core: RouterCore, intent: IntentRecord): EligibleProvider[] {
  const money = intentMoney(intent);
  return intent.eligible.flatMap((providerId) => {
    const provider = core.providerById.get(providerId);
    if (provider === undefined) return [];
    const caps = provider.capabilities;
    return [
      {
        providerId,
        label: caps.label,
        feeMinor: feeFor(caps.fee, money),
        feeLabel: caps.fee.label,
        instant: caps.instant,
      },
    ];
  });
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

function methodForm(action: string, option: EligibleProvider, text: string, primary: boolean): SafeHtml {
  return html`<form method="post" action="${action}"><input type="hidden" name="method" value="${option.providerId}"><button type="submit" class="${primary ? 'primary' : 'secondary'}" data-method="${option.providerId}">${text}</button></form>`;
}

function renderPayPage(core: RouterCore, intent: IntentRecord, status: PaymentStatus): string {
  const amount = formatMoney(intentMoney(intent));
  const action = payPageUrl(core, intent.id);
  const options = methodOptions(core, intent);
  let buttons: SafeHtml[] = [];
  if (!isFinalStatus(status)) {
    const live = liveAttempt(intent);
    const continuing = live === undefined ? undefined : options.find((o) => o.providerId === live.providerId);
    if (continuing !== undefined) {
      buttons = [
        methodForm(action, continuing, `Continue to ${continuing.label}`, true),
        ...options.filter((o) => o !== continuing).map((o) => methodForm(action, o, methodTitle(o), false)),
      ];
    } else {
      buttons = options.map((o, i) => methodForm(action, o, methodTitle(o), i === 0));
    }
  }
  let statusText = STATUS_TEXT[status];
  if (status === 'paid' && intent.run === 'done')
    statusText = 'Paid — return to your chat; your result is ready.';
  const body = html`<h1>Pay for ${intent.binding.tool}</h1>
<div class="amount" id="amount">${amount}</div>
<p class="desc" id="description">${intent.description}</p>
<p class="tool">Tool: <span id="tool">${intent.binding.tool}</span></p>
<p class="status" id="status" data-status="${status}">${statusText}</p>
${buttons}
${buttons.length > 0 ? html`<p class="note">Nothing is charged until you confirm on the payment provider's page.</p>` : ''}`;
  return page(`Pay ${amount} for ${intent.binding.tool}`, body);
}
