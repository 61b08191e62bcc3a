import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMoney } from '../src/core/money/index.js';
import { feeFor } from '../src/core/route/fees.js';
import { routeCharge } from '../src/core/route/route.js';
import { StripeProvider } from '../src/providers/stripe/provider.js';
import { WalleotProvider } from '../src/providers/walleot/provider.js';

// Routing is pure: the real providers answer refuseCharge without any network.
const walleot = new WalleotProvider({ apiKey: 'sk_test_routing', baseUrl: 'http://127.0.0.1:9/v1' });
const stripe = new StripeProvider({
  apiKey: 'sk_test_routing',
  stripe: { host: '127.0.0.1', port: 9, protocol: 'http' },
});
const providers = [walleot, stripe];
const noElicitation = { form: false, url: false };
const formClient = { form: true, url: false };

describe('seed scenarios route as a user expects', () => {
  it('0.01 USD goes straight to Walleot (below Stripe’s minimum)', () => {
    const d = routeCharge({ charge: parseMoney('0.01', 'USD'), providers, client: formClient });
    expect(d.action).toMatchObject({ kind: 'use', providerId: 'walleot', basis: 'only' });
    expect(d.excluded).toEqual([
      { providerId: 'stripe', reason: expect.stringMatching(/minimum|at least/i) },
    ]);
  });

  it('1.00 USDC goes to Walleot', () => {
    const d = routeCharge({ charge: parseMoney('1.00', 'USDC'), providers, client: formClient });
    expect(d.action).toMatchObject({ kind: 'use', providerId: 'walleot' });
    expect(d.excluded.map((e) => e.providerId)).toEqual(['stripe']);
  });

  it('25.00 USD asks the user when both are configured and the client can ask', () => {
    const d = routeCharge({ charge: parseMoney('25.00', 'USD'), providers, client: formClient });
    expect(d.action).toEqual({ kind: 'ask' });
    expect(d.eligible.map((e) => e.providerId)).toEqual(['walleot', 'stripe']);
    expect(d.eligible[1]!.feeMinor).toBe(103); // 2.9% of 2500 = 72.5 -> 73, + 30
  });

  it('25.00 USD without elicitation takes the lowest fee and keeps the other eligible', () => {
    const d = routeCharge({ charge: parseMoney('25.00', 'USD'), providers, client: noElicitation });
    expect(d.action).toMatchObject({ kind: 'use', providerId: 'walleot', basis: 'policy' });
    expect(d.eligible).toHaveLength(2);
  });

  it('a JPY price goes to Stripe only', () => {
    const d = routeCharge({ charge: parseMoney('500', 'JPY'), providers, client: formClient });
    expect(d.action).toMatchObject({ kind: 'use', providerId: 'stripe' });
    expect(d.excluded[0]).toMatchObject({ providerId: 'walleot' });
  });
});

describe('routing inputs', () => {
  it('per-tool override excludes the others with a reason', () => {
    const d = routeCharge({
      charge: parseMoney('25', 'USD'),
      providers,
      toolProviders: ['stripe'],
      client: formClient,
    });
    expect(d.action).toMatchObject({ kind: 'use', providerId: 'stripe' });
    expect(d.excluded).toEqual([{ providerId: 'walleot', reason: expect.stringContaining('provider list') }]);
  });

  it('a remembered choice is used without asking', () => {
    const d = routeCharge({
      charge: parseMoney('25', 'USD'),
      providers,
      remembered: 'stripe',
      client: formClient,
    });
    expect(d.action).toMatchObject({ kind: 'use', providerId: 'stripe', basis: 'remembered' });
    expect(d.eligible[0]!.providerId).toBe('stripe');
  });

  it('a remembered choice that cannot take this charge is ignored', () => {
    const d = routeCharge({
      charge: parseMoney('0.10', 'USD'),
      providers,
      remembered: 'stripe',
      client: formClient,
    });
    expect(d.action).toMatchObject({ kind: 'use', providerId: 'walleot' });
  });

  it('policy "first" keeps configuration order and never asks', () => {
    const d = routeCharge({
      charge: parseMoney('25', 'USD'),
      providers: [stripe, walleot],
      client: formClient,
      policy: 'first',
    });
    expect(d.action).toMatchObject({ kind: 'use', providerId: 'stripe' });
  });

  it('nobody eligible is a clear "none" naming every reason', () => {
    const d = routeCharge({ charge: parseMoney('0.001', 'USDC'), providers, client: formClient });
    expect(d.action.kind).toBe('none');
    expect(d.action.kind === 'none' && d.action.message).toMatch(/walleot: .*; stripe: /);
  });

  it('is total and consistent for any amount and currency (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('USD', 'EUR', 'JPY', 'USDC', 'KWD', 'GBP'),
        fc.integer({ min: 1, max: 10_000_000_000 }),
        fc.boolean(),
        (currency, minor, form) => {
          const d = routeCharge({ charge: { minor, currency }, providers, client: { form, url: false } });
          expect(d.eligible.length + d.excluded.length).toBe(2);
          if (d.action.kind === 'ask') expect(form && d.eligible.length > 1).toBe(true);
          if (d.action.kind === 'use') expect(d.eligible[0]!.providerId).toBe(d.action.providerId);
          if (d.action.kind === 'none') expect(d.eligible).toHaveLength(0);
        },
      ),
    );
  });

  it('fees are exact integers, rounded up', () => {
    expect(feeFor({ percentBps: 290, fixedMinor: 30, label: '' }, { minor: 100, currency: 'USD' })).toBe(33);
    expect(feeFor({ percentBps: 0, fixedMinor: 0, label: '' }, { minor: 12345, currency: 'USD' })).toBe(0);
    expect(
      feeFor(
        { percentBps: 290, fixedMinor: 0, label: '' },
        { minor: Number.MAX_SAFE_INTEGER, currency: 'USD' },
      ),
    ).toBeGreaterThan(0);
  });
});
