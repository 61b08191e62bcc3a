import type { IntentRecord } from '../../core/intent/record.js';
import type { PaymentStatus } from '../../core/intent/status.js';
import type { Telemetry } from './telemetry.js';

const ENDS: ReadonlySet<PaymentStatus> = new Set(['paid', 'failed', 'canceled', 'expired', 'refunded']);

/**
 * Count how a payment ended (`payrouter.payments.<status>`, and time to paid), by whoever made
 * the transition: called only by the writer whose compare-and-set moved the status from
 * `before`, so instances sharing a store count each payment once.
 */
export function recordTransition(
  telemetry: Telemetry | undefined,
  before: PaymentStatus,
  intent: IntentRecord,
): void {
  if (telemetry === undefined || before === intent.status || !ENDS.has(intent.status)) return;
  const name = `payrouter.payments.${intent.status}`;
  const timed = intent.status === 'paid' && telemetry.observes('payrouter.payment.time_to_paid');
  // With no meter SDK behind them, nothing to count: no attributes built.
  if (!telemetry.counts(name) && !timed) return;
  const paid = intent.attempts.find((a) => a.status === 'paid') ?? intent.attempts.at(-1);
  const attributes = {
    'payrouter.tool': intent.binding.tool,
    'payrouter.currency': intent.binding.currency,
    ...(paid ? { 'payrouter.provider': paid.providerId } : {}),
  };
  telemetry.count(name, attributes);
  if (timed)
    telemetry.observe(
      'payrouter.payment.time_to_paid',
      Math.max(0, Date.now() - intent.createdAt),
      attributes,
    );
}
