import { joined } from '../../core/ids.js';
import type { IntentRecord } from '../../core/intent/record.js';
import type { Logger } from '../../core/logger.js';
import { receiptOf } from '../../core/receipt.js';
import type { LedgerEntry, PaymentStore, UsageStore } from '../../store/types.js';
import { isUsageStore } from '../../store/types.js';

export { receiptOf } from '../../core/receipt.js';
export type { LedgerEntry } from '../../store/types.js';

export interface LedgerQuery {
  subject: string;
  /** ms since epoch, or a Date; default: everything kept. */
  since?: number | Date;
  /** Default 1,000. */
  limit?: number;
}

type Listener = (entry: LedgerEntry) => void | Promise<void>;

/**
 * Every payment, free call, run, refund and cancel, per subject, in minor units, kept in the
 * store (its durability) for `retentionMs`. Each entry is written and emitted once, by the
 * instance whose compare-and-set made its event happen: `on('entry')` feeds the author's own storage.
 */
export class Ledger {
  readonly #store: (PaymentStore & UsageStore) | undefined;
  readonly #listeners = new Set<Listener>();

  constructor(
    store: PaymentStore,
    readonly retentionMs: number,
    private readonly logger: Logger,
    hook?: Listener,
  ) {
    this.#store = isUsageStore(store) ? store : undefined;
    if (hook) this.#listeners.add(hook);
  }

  /** Listen to new entries (each emitted once, on the instance that recorded it). Returns an unsubscribe function. */
  on(event: 'entry', listener: Listener): () => void {
    if (event !== 'entry') throw new TypeError(`ledger.on: unknown event "${String(event)}"`);
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A subject's entries, oldest first. */
  async list(query: LedgerQuery): Promise<LedgerEntry[]> {
    if (this.#store === undefined) return [];
    const since = query.since instanceof Date ? query.since.getTime() : (query.since ?? 0);
    return this.#store.listLedger(query.subject, since, Math.max(1, Math.min(query.limit ?? 1_000, 10_000)));
  }

  /** Record an entry about an intent; never throws (a ledger failure is logged, the call goes on). */
  async record(
    intent: IntentRecord,
    kind: LedgerEntry['kind'],
    fields: {
      id?: string;
      amount?: number;
      provider?: string;
      providerPaymentId?: string;
      ok?: boolean;
      reason?: string;
    } = {},
  ): Promise<void> {
    const entry: LedgerEntry = {
      id:
        fields.id === undefined ? joined(intent.id, ':', kind) : joined(intent.id, ':', kind, ':', fields.id),
      at: Date.now(),
      subject: intent.binding.subject,
      kind,
      intentId: intent.id,
      tool: intent.binding.tool,
      amount: fields.amount ?? intent.binding.amount,
      currency: intent.binding.currency,
      receipt: receiptOf(intent.id),
    };
    if (fields.provider !== undefined) entry.provider = fields.provider;
    if (fields.providerPaymentId !== undefined) entry.providerPaymentId = fields.providerPaymentId;
    if (fields.ok !== undefined) entry.ok = fields.ok;
    if (fields.reason !== undefined) entry.reason = fields.reason;
    // Frozen before anyone sees it: the store keeps this very object, and listeners cannot change it.
    Object.freeze(entry);
    try {
      const fresh =
        this.#store === undefined ? true : await this.#store.appendLedger(entry, this.retentionMs);
      if (!fresh) return;
    } catch (error) {
      this.logger.warn('recording a ledger entry failed', { intentId: intent.id, kind, error });
    }
    for (const listener of this.#listeners) {
      try {
        await listener(entry);
      } catch (error) {
        this.logger.warn('a ledger listener threw', { kind, error });
      }
    }
  }
}
