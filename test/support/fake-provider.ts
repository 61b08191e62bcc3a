import { ProviderError } from '../../src/core/errors.js';
import type { IntentRecord } from '../../src/core/intent/record.js';
import type { PaymentStatus } from '../../src/core/intent/status.js';
import type {
  CreatedPayment,
  PaymentProvider,
  ProviderCapabilities,
  ProviderPaymentState,
} from '../../src/core/provider.js';

/**
 * An in-process provider for unit tests of the confirmation layer: payments live in a map, every
 * `getPayment` is counted (and timestamped with `Date.now()`, which fake timers control), failures
 * can be queued, and reads can be held at a gate to make callers overlap.
 */
export class FakeProvider implements PaymentProvider {
  readonly id: string;
  readonly capabilities: ProviderCapabilities;
  /** Every `getPayment` call, in order. */
  readonly reads: Array<{ paymentId: string; at: number }> = [];
  readonly #payments = new Map<string, ProviderPaymentState>();
  readonly #failures: ProviderError[] = [];
  #gate: Promise<void> | undefined;
  #openGate: (() => void) | undefined;
  #nextId = 1;

  constructor(options: { id?: string; statusReadsPerMinute?: number } = {}) {
    this.id = options.id ?? 'fake';
    this.capabilities = {
      label: 'Fake provider',
      currencies: ['USD'],
      limits: {},
      fee: { percentBps: 0, fixedMinor: 0, label: 'no fee' },
      instant: false,
      webhooks: true,
      returnRedirect: false,
      refunds: false,
      cancel: false,
      statusReadsPerMinute: options.statusReadsPerMinute ?? 1000,
      testMode: true,
    };
  }

  get readCount(): number {
    return this.reads.length;
  }

  /** Set what the provider reports for a payment (creating it when new). */
  setStatus(paymentId: string, status: PaymentStatus, rawStatus: string = status): void {
    this.#payments.set(paymentId, { paymentId, status, rawStatus });
  }

  /** The next `getPayment` calls throw these, one each, in order. */
  failNext(...errors: ProviderError[]): void {
    this.#failures.push(...errors);
  }

  /** Hold every `getPayment` until `openGate` is called. */
  closeGate(): void {
    this.#gate = new Promise((resolve) => {
      this.#openGate = resolve;
    });
  }

  openGate(): void {
    this.#openGate?.();
    this.#gate = undefined;
    this.#openGate = undefined;
  }

  refuseCharge(): undefined {
    return undefined;
  }

  async createPayment(): Promise<CreatedPayment> {
    const paymentId = `fake_${this.#nextId++}`;
    this.setStatus(paymentId, 'pending', 'open');
    return {
      paymentId,
      status: 'pending',
      rawStatus: 'open',
      action: { kind: 'redirect', url: `https://pay.example/${paymentId}` },
    };
  }

  async getPayment(paymentId: string): Promise<ProviderPaymentState> {
    this.reads.push({ paymentId, at: Date.now() });
    if (this.#gate !== undefined) await this.#gate;
    const failure = this.#failures.shift();
    if (failure !== undefined) throw failure;
    const state = this.#payments.get(paymentId);
    if (state === undefined) throw new ProviderError(this.id, 'not_found', `no payment ${paymentId}`);
    return { ...state };
  }
}

/**
 * A valid intent record whose live attempt is `paymentId` at `provider`, with the provider told the
 * same status. Expires an hour from `Date.now()` so fake clocks stay inside its lifetime.
 */
export function fakeIntent(
  provider: FakeProvider,
  id: string,
  status: PaymentStatus = 'pending',
  paymentId = `pay_${id}`,
): IntentRecord {
  const now = Date.now();
  provider.setStatus(paymentId, status);
  return {
    id,
    version: 1,
    binding: { tool: 'echo', argsHash: 'hash', amount: 100, currency: 'USD', subject: 'user-1' },
    argsJson: '{}',
    description: 'echo',
    status,
    eligible: [provider.id],
    attempts: [
      {
        providerId: provider.id,
        paymentId,
        url: `https://pay.example/${paymentId}`,
        status,
        rawStatus: status,
        idempotencyKey: `key_${id}`,
        createdAt: now,
      },
    ],
    run: 'unused',
    fence: 0,
    runErrors: [],
    createdAt: now,
    updatedAt: now,
    expiresAt: now + 3_600_000,
  };
}
