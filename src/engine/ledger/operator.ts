import { PayRouterError, ProviderError } from '../../core/errors.js';
import { looksLikeIntentId } from '../../core/ids.js';
import type { IntentRecord } from '../../core/intent/record.js';
import type { PaymentStatus } from '../../core/intent/status.js';
import { isFinalStatus } from '../../core/intent/status.js';
import { advanceStatus, liveAttempt } from '../../core/intent/transitions.js';
import { cancelLiveAttempt, refundAttempt } from '../attempts.js';
import { updateIntent } from '../intents.js';
import type { RouterCore } from '../runtime.js';
import { recordTransition } from '../telemetry/payment-metrics.js';

/** What an operator action did: `changed` false when it had been done before (idempotent). */
export interface OperatorResult {
  paymentId: string;
  status: PaymentStatus;
  changed: boolean;
}

const MAX_REASON = 200;

async function intentOf(core: RouterCore, paymentId: string): Promise<IntentRecord> {
  const intent = looksLikeIntentId(paymentId) ? await core.store.get(paymentId) : undefined;
  if (intent === undefined) throw new PayRouterError('not_found', `No payment "${paymentId}" in this store`);
  return intent;
}

/**
 * Refund a paid payment at its provider (support cases), record it in the ledger and give its
 * budget back to the payer's limits. A free call is "refunded" by giving its allowance back.
 * Doing it again changes nothing. A payment that was never paid is not refunded: cancel it.
 */
export async function operatorRefund(
  core: RouterCore,
  paymentId: string,
  options: { reason?: string } = {},
): Promise<OperatorResult> {
  const reason = options.reason?.slice(0, MAX_REASON);
  const intent = await intentOf(core, paymentId);
  if (intent.status === 'refunded') return { paymentId, status: 'refunded', changed: false };
  if (intent.status !== 'paid')
    throw new PayRouterError(
      'invalid_state',
      `Payment "${paymentId}" is ${intent.status}, not paid: nothing to refund${isFinalStatus(intent.status) ? '' : ' (cancel it instead)'}`,
    );
  if (intent.free === true) {
    const refunded = await updateIntent(core.store, intent.id, (c) =>
      c.status === 'paid' ? { ...c, status: 'refunded', updatedAt: Date.now() } : undefined,
    );
    await core.ledger?.record(refunded ?? intent, 'refund', {
      amount: 0,
      provider: 'free',
      ...(reason === undefined ? {} : { reason }),
    });
    await core.limits?.release(intent.binding.subject, intent.id);
    return { paymentId, status: refunded?.status ?? 'refunded', changed: true };
  }
  const attempt = intent.attempts.find((a) => a.status === 'paid');
  if (attempt === undefined)
    throw new PayRouterError(
      'invalid_state',
      `Payment "${paymentId}" has no paid provider payment to refund`,
    );
  if (!core.providerById.get(attempt.providerId)?.refundPayment)
    throw new ProviderError(
      attempt.providerId,
      'not_supported',
      `Provider "${attempt.providerId}" cannot refund through its API; refund it in the provider's dashboard`,
    );
  await refundAttempt(core, intent.id, attempt, reason);
  const after = (await core.store.get(intent.id)) ?? intent;
  return { paymentId, status: after.status, changed: true };
}

/**
 * Cancel an unpaid payment: its provider payment is canceled where the provider can, the intent
 * ends `canceled`, the ledger records it and the payer's budget comes back. Idempotent; a paid
 * payment is refunded, not canceled.
 */
export async function operatorCancel(
  core: RouterCore,
  paymentId: string,
  options: { reason?: string } = {},
): Promise<OperatorResult> {
  const reason = options.reason?.slice(0, MAX_REASON);
  const intent = await intentOf(core, paymentId);
  if (intent.status === 'paid')
    throw new PayRouterError(
      'invalid_state',
      `Payment "${paymentId}" is paid: refund it instead of canceling`,
    );
  if (isFinalStatus(intent.status)) return { paymentId, status: intent.status, changed: false };
  if (liveAttempt(intent)) await cancelLiveAttempt(core, intent);
  const latest = (await core.store.get(intent.id)) ?? intent;
  if (latest.status === 'paid')
    throw new PayRouterError('invalid_state', `Payment "${paymentId}" was paid meanwhile: refund it instead`);
  const canceled =
    (await updateIntent(core.store, intent.id, (c) => advanceStatus(c, 'canceled', Date.now()), latest)) ??
    latest;
  if (canceled.status === 'canceled' && latest.status !== 'canceled') {
    recordTransition(core.telemetry, latest.status, canceled);
    await core.store.publish({ intentId: canceled.id, status: canceled.status, version: canceled.version });
  }
  await core.ledger?.record(canceled, 'cancel', {
    amount: 0,
    ...(liveAttempt(intent) ? { provider: liveAttempt(intent)!.providerId } : {}),
    ...(reason === undefined ? {} : { reason }),
  });
  await core.limits?.release(intent.binding.subject, intent.id);
  return { paymentId, status: canceled.status, changed: canceled.status !== intent.status };
}
