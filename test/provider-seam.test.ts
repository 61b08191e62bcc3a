import { afterEach, describe, expect, it } from 'vitest';
import type { Money } from '../src/core/money/index.js';
import type {
  Charge,
  CreatedPayment,
  PaymentAction,
  PaymentProvider,
  ProviderCapabilities,
  ProviderPaymentState,
} from '../src/core/provider.js';
import { ensureAttempt } from '../src/engine/attempts.js';
import { engineRuntime } from './support/engine-runtime.js';
import { FakeProvider, fakeIntent } from './support/fake-provider.js';

/**
 * The provider seam (DESIGN §3): `createPayment` returns the state plus a PaymentAction. Two
 * test-only providers an agent pays by itself (an invoice, a machine credential) plug into the
 * contract, and the engine records their attempts without inventing a link: a redirect's url is
 * the attempt's url, any other action leaves it empty. Test-only: no product provider does this.
 */

const capabilities = (label: string): ProviderCapabilities => ({
  label,
  currencies: ['USD'],
  limits: {},
  fee: { percentBps: 0, fixedMinor: 0, label: 'no fee' },
  instant: true,
  webhooks: false,
  returnRedirect: false,
  refunds: false,
  cancel: false,
  statusReadsPerMinute: 600,
  testMode: true,
});

class ActionProvider implements PaymentProvider {
  readonly capabilities: ProviderCapabilities;
  readonly creates: Charge[] = [];
  constructor(
    readonly id: string,
    private readonly action: (charge: Charge) => PaymentAction,
  ) {
    this.capabilities = capabilities(id);
  }
  refuseCharge(money: Money) {
    return money.currency === 'USD' ? undefined : 'USD only';
  }
  async createPayment(charge: Charge): Promise<CreatedPayment> {
    this.creates.push(charge);
    return {
      paymentId: `${this.id}_${charge.intentId}`,
      status: 'pending',
      rawStatus: 'open',
      action: this.action(charge),
    };
  }
  async getPayment(paymentId: string): Promise<ProviderPaymentState> {
    return { paymentId, status: 'pending', rawStatus: 'open' };
  }
  /** A credential "pays" when it names the charge's intent and amount. */
  async verifyCredential(credential: unknown, charge: Charge): Promise<ProviderPaymentState> {
    const ok =
      typeof credential === 'object' &&
      credential !== null &&
      (credential as Record<string, unknown>)['intent'] === charge.intentId &&
      (credential as Record<string, unknown>)['minor'] === charge.money.minor;
    return {
      paymentId: `${this.id}_${charge.intentId}`,
      status: ok ? 'paid' : 'failed',
      rawStatus: ok ? 'verified' : 'rejected',
      ...(ok ? { paid: charge.money } : {}),
    };
  }
}

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

async function attemptWith(provider: PaymentProvider) {
  const { rt: core, store, close } = engineRuntime([provider]);
  closers.push(close);
  const base = fakeIntent(new FakeProvider({ id: provider.id }), 'pay_seam');
  await store.insert({ ...base, status: 'requires_method', eligible: [provider.id], attempts: [] });
  const intent = await ensureAttempt(core, 'pay_seam', provider.id);
  return intent.attempts.at(-1)!;
}

describe('PaymentAction: providers an agent pays by itself plug into the seam', () => {
  it('a redirect becomes the attempt’s link', async () => {
    const provider = new ActionProvider('redirector', (c) => ({
      kind: 'redirect',
      url: `https://pay.test/${c.intentId}`,
    }));
    expect(await attemptWith(provider)).toMatchObject({
      providerId: 'redirector',
      paymentId: 'redirector_pay_seam',
      url: 'https://pay.test/pay_seam',
    });
  });

  it('an invoice and a credential requirement are recorded with no link', async () => {
    const invoice = new ActionProvider('lightning', () => ({
      kind: 'invoice',
      invoice: 'lnbc10n1test',
      scheme: 'bolt11',
    }));
    expect(await attemptWith(invoice)).toMatchObject({ paymentId: 'lightning_pay_seam', url: '' });
    const credential = new ActionProvider('voucher', (c) => ({
      kind: 'credential_required',
      requirements: { intent: c.intentId, minor: c.money.minor },
    }));
    expect(await attemptWith(credential)).toMatchObject({ paymentId: 'voucher_pay_seam', url: '' });
    expect(credential.creates).toHaveLength(1);

    const charge = credential.creates[0]!;
    expect(
      await credential.verifyCredential({ intent: charge.intentId, minor: charge.money.minor }, charge),
    ).toMatchObject({
      status: 'paid',
      paid: charge.money,
    });
    expect(await credential.verifyCredential({ intent: charge.intentId, minor: 1 }, charge)).toMatchObject({
      status: 'failed',
    });
  });
});
