import { describe, expect, it } from 'vitest';
import { currencyExponent, normalizeCurrency } from '../src/core/money/index.js';
import * as product from '../src/providers/stripe/currencies.js';
import { WALLEOT_WIRE_EXPONENT } from '../src/providers/walleot/tables.js';
import * as sandbox from '../src/sandbox/tables.js';

/**
 * The stand-ins keep their own copy of each provider's published tables (DESIGN §3: a test oracle
 * must not be the code under test). The two copies are written separately and must agree: a slip
 * in either shows here.
 */
describe('the stand-ins’ copy of the published tables agrees with the providers’', () => {
  it('Stripe: currencies, zero- and three-decimal sets, minimums, maximum', () => {
    expect([...sandbox.STRIPE_CURRENCIES].sort()).toEqual([...product.STRIPE_CURRENCIES].sort());
    expect([...sandbox.STRIPE_ZERO_DECIMAL].sort()).toEqual([...product.STRIPE_ZERO_DECIMAL].sort());
    expect([...sandbox.STRIPE_THREE_DECIMAL].sort()).toEqual([...product.STRIPE_THREE_DECIMAL].sort());
    expect(sandbox.STRIPE_MAX_AMOUNT).toBe(product.STRIPE_MAX_AMOUNT);
    for (const code of product.STRIPE_CURRENCIES) {
      expect(sandbox.stripeMinimum(code), code).toBe(product.stripeMinimum(code));
      expect(sandbox.stripeExponent(code), code).toBe(product.stripeExponent(code));
    }
  });

  it('ISO exponents (Walleot cents are checked against them), and Walleot’s wire unit', () => {
    for (const code of ['usd', 'eur', 'jpy', 'kwd', 'isk', 'mga', 'clf', 'usdc', 'huf', 'bhd', 'krw']) {
      expect(sandbox.isoExponent(code), code).toBe(currencyExponent(code.toUpperCase()));
    }
    expect(sandbox.isoExponent('xyz')).toBeUndefined();
    expect(normalizeCurrency('xyz')).toBeUndefined();
    expect(sandbox.WALLEOT_WIRE_EXPONENT).toBe(WALLEOT_WIRE_EXPONENT);
  });

  it('formats amounts by digits: $0.50, ¥50, 175.00 HUF, $999,999.99, 1.000000 USDC', () => {
    expect(sandbox.formatAmount(50, 2, 'usd')).toBe('$0.50');
    expect(sandbox.formatAmount(50, 0, 'jpy')).toBe('¥50');
    expect(sandbox.formatAmount(17_500, 2, 'huf')).toBe('175.00 HUF');
    expect(sandbox.formatAmount(99_999_999, 2, 'usd')).toBe('$999,999.99');
    expect(sandbox.formatAmount(1_000_000, 6, 'usdc')).toBe('1.000000 USDC');
    expect(sandbox.formatAmount(5120, 3, 'kwd')).toBe('5.120 KWD');
  });
});
