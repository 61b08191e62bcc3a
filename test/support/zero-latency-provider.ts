import { ProviderError } from '../../src/core/errors.js';
import type { PaymentStatus } from '../../src/core/intent/status.js';
import type { Money } from '../../src/core/money/money.js';
import type {
  Charge,
  CreatedPayment,
  CreatePaymentOptions,
  PaymentProvider,
  ProviderCapabilities,
  ProviderPaymentState,
} from '../../src/core/provider.js';

/**
 * A PaymentProvider that lives in the process and answers at once, so benchmarks measure the
 * router and nothing else. `paid_on_first_read` reports every payment paid the first time it is
 * read (the fastest possible payer); `manual` keeps payments pending until `pay`/`setStatus`.
 * Like Stripe, the same idempotency key returns the same payment. Creates and reads are counted.
 */
export interface ZeroLatencyProviderOptions {
  id?: string;
  mode?: 'paid_on_first_read' | 'manual';
  /** Status reads per minute advertised to the confirmation layer (default: unlimited). */
  statusReadsPerMinute?: number;
  currencies?: string[];
}

export class ZeroLatencyProvider implements PaymentProvider {
  readonly id: string;
  readonly capabilities: ProviderCapabilities;
  readonly mode: 'paid_on_first_read' | 'manual';
  creates = 0;
  reads = 0;
  readonly #payments = new Map<string, ProviderPaymentState>();
  readonly #byKey = new Map<string, CreatedPayment>();
  #next = 1;

  constructor(options: ZeroLatencyProviderOptions = {}) {
    this.id = options.id ?? 'zero';
    this.mode = options.mode ?? 'paid_on_first_read';
    this.capabilities = {
      label: 'Zero-latency test provider',
      currencies: options.currencies ?? ['USD'],
      limits: {},
      fee: { percentBps: 0, fixedMinor: 0, label: 'no fee' },
      instant: true,
      webhooks: false,
      returnRedirect: false,
      refunds: false,
      cancel: false,
      statusReadsPerMinute: options.statusReadsPerMinute ?? Number.POSITIVE_INFINITY,
      testMode: true,
    };
  }

  /** How many payments exist (one per distinct idempotency key). */
  get size(): number {
    return this.#payments.size;
  }

  refuseCharge(money: Money): string | undefined {
    return this.capabilities.currencies.includes(money.currency) ? undefined : `no ${money.currency}`;
  }

  async createPayment(charge: Charge, options: CreatePaymentOptions): Promise<CreatedPayment> {
    this.creates += 1;
    const replay = this.#byKey.get(options.idempotencyKey);
    if (replay !== undefined) return { ...replay, ...this.#payments.get(replay.paymentId)! };
    const paymentId = `zl_${this.#next++}_${charge.intentId.slice(-6)}`;
    const created: CreatedPayment = {
      paymentId,
      status: 'pending',
      rawStatus: 'pending',
      action: { kind: 'redirect', url: `https://pay.invalid/${paymentId}` },
    };
    this.#payments.set(paymentId, { paymentId, status: 'pending', rawStatus: 'pending' });
    this.#byKey.set(options.idempotencyKey, created);
    return { ...created };
  }

  async getPayment(paymentId: string): Promise<ProviderPaymentState> {
    this.reads += 1;
    const state = this.#payments.get(paymentId);
    if (state === undefined) throw new ProviderError(this.id, 'not_found', `no payment ${paymentId}`);
    if (this.mode === 'paid_on_first_read' && state.status === 'pending') {
      state.status = 'paid';
      state.rawStatus = 'paid';
    }
    return { ...state };
  }

  /** Play the payer: the payment is paid from now on. */
  pay(paymentId: string): void {
    this.setStatus(paymentId, 'paid');
  }

  setStatus(paymentId: string, status: PaymentStatus): void {
    const state = this.#payments.get(paymentId);
    if (state === undefined) throw new Error(`ZeroLatencyProvider: no payment ${paymentId}`);
    state.status = status;
    state.rawStatus = status;
  }

  resetCounters(): void {
    this.creates = 0;
    this.reads = 0;
  }
}
