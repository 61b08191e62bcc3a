import type { Logger } from '../../core/logger.js';
import type { PaymentStore, StatusChange } from '../../store/types.js';
import { UsageLimits, type UsageLimitsInput } from '../limits/limits.js';
import type { EngineOptions } from '../options.js';
import type { RouterCore } from '../runtime.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { Ledger } from './ledger.js';

/** Default ledger retention: 90 days. */
export const DEFAULT_LEDGER_RETENTION_MS = 90 * 24 * 60 * 60 * 1000;

/** The limits, ledger and telemetry of one router, from its options. */
export function usageParts(options: EngineOptions, store: PaymentStore, logger: Logger) {
  const { spend, calls, free, clock } = options.limits ?? {};
  const rules: UsageLimitsInput = {
    ...(spend ? { spend } : {}),
    ...(calls ? { calls } : {}),
    ...(free ? { free } : {}),
  };
  const limits = new UsageLimits(store, rules, clock);
  const ledger = new Ledger(
    store,
    options.ledger?.retentionMs ?? DEFAULT_LEDGER_RETENTION_MS,
    logger,
    options.hooks?.onLedgerEntry,
  );
  const telemetry = new Telemetry(options.telemetry ?? {});
  return { limits, ledger, ...(telemetry.enabled ? { telemetry } : {}) };
}

const UNPAID_ENDS = new Set(['failed', 'canceled', 'expired', 'refunded']);

/**
 * Budget held by a payment that ended unpaid (or was refunded) comes back, once, whichever
 * instance sees the change first. (How payments ended is counted by the writer of the change,
 * not here: every instance sees every change.) Returns an unsubscribe.
 */
export function watchEnds(core: RouterCore, limitsInUse: () => boolean): () => void {
  return core.store.subscribe((change: StatusChange) => {
    if (!UNPAID_ENDS.has(change.status) || !limitsInUse()) return;
    void (async () => {
      const intent = await core.store.get(change.intentId);
      if (intent !== undefined && UNPAID_ENDS.has(intent.status))
        await core.limits?.release(intent.binding.subject, intent.id);
    })().catch((error: unknown) => core.logger.warn('giving back a limit reservation failed', { error }));
  });
}
