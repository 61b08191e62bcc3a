import { describe, expect, it } from 'vitest';
import { isForwardTransition, PAYMENT_STATUSES } from '../src/core/intent/status.js';
import { parseMoney } from '../src/core/money/index.js';
import { routeCharge } from '../src/core/route/route.js';
import { StripeProvider } from '../src/providers/stripe/provider.js';
import { WalleotProvider } from '../src/providers/walleot/provider.js';
import { X402Provider } from '../src/providers/x402/provider.js';

// Pure: refuseCharge and the routing decision need no network.
const walleot = new WalleotProvider({ apiKey: 'sk_test_routing', baseUrl: 'http://127.0.0.1:9/v1' });
const stripe = new StripeProvider({
  apiKey: 'sk_test_routing',
  stripe: { host: '127.0.0.1', port: 9, protocol: 'http' },
});
const x402 = new X402Provider({
  payTo: '0x1111111111111111111111111111111111111111',
  facilitatorUrl: 'http://127.0.0.1:9',
});
const providers = [x402, walleot, stripe];
const usd = (amount: string) => parseMoney(amount, 'USD');

describe('the authorized status', () => {
  it('moves forward only: from open states to authorized, from authorized to paid or failed', () => {
    for (const from of ['requires_method', 'pending', 'unknown'] as const)
      expect(isForwardTransition(from, 'authorized')).toBe(true);
    const fromAuthorized = PAYMENT_STATUSES.filter((s) => isForwardTransition('authorized', s));
    expect(fromAuthorized.sort()).toEqual(['failed', 'paid']);
    for (const final of ['paid', 'failed', 'canceled', 'expired', 'refunded'] as const)
      expect(isForwardTransition(final, 'authorized')).toBe(false);
  });
});

describe('machine offers are candidates like any provider', () => {
  it('a person is routed among the human methods; the machine offer stays eligible, listed last', () => {
    const d = routeCharge({ charge: usd('0.25'), providers, client: { form: false, url: false } });
    expect(d.action).toMatchObject({ kind: 'use', providerId: 'walleot' });
    expect(d.eligible.map((e) => e.providerId)).toEqual(['walleot', 'x402']);
    expect(d.eligible[1]).toMatchObject({ credential: 'x402' });
    // A form client is asked among the human methods only when more than one fits.
    const ask = routeCharge({ charge: usd('25.00'), providers, client: { form: true, url: false } });
    expect(ask.action).toEqual({ kind: 'ask' });
    expect(ask.eligible.map((e) => e.providerId)).toEqual(['walleot', 'stripe', 'x402']);
  });

  it('a client that paid by itself gets the machine offer first, by connection or by subject', () => {
    const byConnection = routeCharge({
      charge: usd('25.00'),
      providers,
      client: { form: true, url: false, machine: true },
    });
    expect(byConnection.action).toMatchObject({ kind: 'use', providerId: 'x402', basis: 'machine' });
    expect(byConnection.eligible[0]!.providerId).toBe('x402');
    const bySubject = routeCharge({
      charge: usd('0.25'),
      providers,
      remembered: 'x402',
      client: { form: false, url: false },
    });
    expect(bySubject.action).toMatchObject({ kind: 'use', providerId: 'x402', basis: 'machine' });
  });

  it('currency, limits and the per-tool override exclude it with a reason', () => {
    const jpy = routeCharge({
      charge: parseMoney('500', 'JPY'),
      providers,
      client: { form: false, url: false },
    });
    expect(jpy.excluded.find((e) => e.providerId === 'x402')?.reason).toMatch(/USD only/);
    const big = routeCharge({ charge: usd('5000.00'), providers, client: { form: false, url: false } });
    expect(big.excluded.find((e) => e.providerId === 'x402')?.reason).toMatch(/maximum/);
    const override = routeCharge({
      charge: usd('0.25'),
      providers,
      toolProviders: ['walleot'],
      client: { form: false, url: false, machine: true },
    });
    expect(override.action).toMatchObject({ kind: 'use', providerId: 'walleot' });
  });

  it('only the machine offer: a person is routed to it (the result tells them what an agent does)', () => {
    const d = routeCharge({ charge: usd('0.25'), providers: [x402], client: { form: false, url: false } });
    expect(d.action).toMatchObject({ kind: 'use', providerId: 'x402', basis: 'only' });
  });
});

describe('X402Provider amounts are exact', () => {
  it('turns minor units into atomic units of the asset, with no float', () => {
    const req = x402.offerCredential({ money: usd('0.25'), description: 'd', intentId: 'pi_1' });
    expect(req).toMatchObject({ scheme: 'exact', amount: '250000', network: 'eip155:84532' });
    expect(x402.offerCredential({ money: usd('999.99'), description: 'd', intentId: 'pi_1' }).amount).toBe(
      '999990000',
    );
  });

  it('refuses an amount the asset cannot represent exactly', () => {
    const coarse = new X402Provider({
      payTo: '0x1111111111111111111111111111111111111111',
      asset: { address: '0x2222222222222222222222222222222222222222', decimals: 1, name: 'T', version: '1' },
    });
    expect(coarse.refuseCharge(usd('0.25'))).toMatch(/not exactly representable/);
    expect(coarse.refuseCharge(usd('0.30'))).toBeUndefined();
  });

  it('prints no facilitator headers and refuses a bad pay-to address at construction', () => {
    expect(() => new X402Provider({ payTo: 'nope' })).toThrow(/payTo/);
    expect(JSON.stringify(x402)).not.toMatch(/facilitatorHeaders|secret/);
  });
});
