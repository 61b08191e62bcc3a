import type { IntentRecord } from '../core/intent/record.js';
import { intentMoney } from '../core/intent/record.js';
import { namespaced } from '../core/logger.js';
import { toDecimalString } from '../core/money/money.js';
import { type RouterCore, runHook } from './runtime.js';

/**
 * What follows a payment becoming paid, done once by the writer whose compare-and-set made it so:
 * the ledger's `paid` (or a free call's `free`), the debug line and `onPaid`. A provider-paid
 * payment is announced where its status moved (status read, webhook, return page, a payment paid
 * on creation), whether or not its call ever comes back; a credential's at its settlement; a free
 * call at its first claim.
 */
/** `payrouter:run`: a payment became paid. */
function logPaid(core: RouterCore, intent: IntentRecord): void {
  const runLog = namespaced(core.logger, 'run');
  if (runLog.isLevelEnabled?.('debug') === false) return;
  const paid = intent.attempts.find((a) => a.status === 'paid') ?? intent.attempts.at(-1);
  const money = intentMoney(intent);
  runLog.debug('paid', {
    intentId: intent.id,
    tool: intent.binding.tool,
    amount: `${toDecimalString(money)} ${money.currency}`,
    ...(paid ? { provider: paid.providerId, providerPaymentId: paid.paymentId } : {}),
  });
}

/** A payment became paid: its ledger line, the debug line, `onPaid`. */
export async function announcePaid(core: RouterCore, intent: IntentRecord): Promise<void> {
  await recordPaid(core, intent);
  if (intent.free !== true) logPaid(core, intent);
  if (core.hooks.onPaid !== undefined) await runHook(core, 'onPaid', core.hooks.onPaid, eventOf(intent));
}

/** The ledger line of a paid payment: `paid` (with its provider payment) or `free`. */
async function recordPaid(core: RouterCore, intent: IntentRecord): Promise<void> {
  const free = intent.free === true;
  const paid = intent.attempts.find((a) => a.status === 'paid');
  await core.ledger?.record(intent, free ? 'free' : 'paid', {
    amount: ledgerAmount(intent),
    ...providerOf(intent),
    ...(paid ? { providerPaymentId: paid.paymentId } : {}),
  });
  // A payment's paid count and time to paid are recorded where its status became paid.
  if (free && core.telemetry?.counts('payrouter.calls.free'))
    core.telemetry.count('payrouter.calls.free', {
      'payrouter.tool': intent.binding.tool,
      'payrouter.currency': intent.binding.currency,
    });
}

export function ledgerAmount(intent: IntentRecord): number {
  return intent.free === true ? 0 : intent.binding.amount;
}

export function providerOf(intent: IntentRecord): { provider?: string } {
  if (intent.free === true) return { provider: 'free' };
  const id =
    intent.attempts.find((a) => a.status === 'paid')?.providerId ?? intent.attempts.at(-1)?.providerId;
  return id === undefined ? {} : { provider: id };
}

export function eventOf(intent: IntentRecord) {
  return {
    intentId: intent.id,
    tool: intent.binding.tool,
    subject: intent.binding.subject,
    amount: intentMoney(intent),
    providerId:
      intent.attempts.find((a) => a.status === 'paid')?.providerId ??
      intent.attempts.at(-1)?.providerId ??
      '',
  };
}
