import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatMoney, parseMoney, toDecimalString } from '../src/core/money/index.js';

describe('parseMoney', () => {
  it('parses decimals exactly', () => {
    expect(parseMoney(0.29, 'USD')).toEqual({ minor: 29, currency: 'USD' });
    expect(parseMoney('0.29', 'usd')).toEqual({ minor: 29, currency: 'USD' });
    expect(parseMoney(500, 'JPY')).toEqual({ minor: 500, currency: 'JPY' });
    expect(parseMoney('1.000001', 'USDC')).toEqual({ minor: 1_000_001, currency: 'USDC' });
    expect(parseMoney('5.125', 'KWD')).toEqual({ minor: 5125, currency: 'KWD' });
    expect(parseMoney('0.50', 'USD').minor).toBe(50);
  });

  it.each([
    [1.005, 'USD'],
    [-1, 'USD'],
    [0, 'USD'],
    [Number.NaN, 'USD'],
    ['abc', 'USD'],
    [1e-9, 'USD'],
    [0.1 + 0.2, 'USD'],
    ['1.5', 'JPY'],
    ['1', 'XXX'],
    [Number.POSITIVE_INFINITY, 'USD'],
    ['', 'USD'],
    ['1,00', 'USD'],
  ])('refuses %s %s with a MoneyError', (amount, currency) => {
    expect(() => parseMoney(amount as number | string, currency)).toThrowError(
      expect.objectContaining({ code: 'invalid_amount' }),
    );
  });
});

describe('formatMoney', () => {
  it('formats in the currency', () => {
    expect(formatMoney(parseMoney('0.25', 'USD'))).toBe('$0.25');
    expect(formatMoney(parseMoney('500', 'JPY'))).toBe('¥500');
    expect(formatMoney(parseMoney('1234.5', 'EUR'))).toBe('€1,234.50');
    expect(formatMoney(parseMoney('1.5', 'USDC'))).toBe('1.500000 USDC');
  });
});

describe('round trips (property)', () => {
  it('decimal string -> Money -> decimal string is the identity on canonical strings', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('USD', 'JPY', 'KWD', 'USDC', 'EUR'),
        fc.bigInt({ min: 1n, max: 10n ** 15n }),
        (currency, minor) => {
          const m = { minor: Number(minor), currency };
          const text = toDecimalString(m);
          expect(parseMoney(text, currency)).toEqual(m);
        },
      ),
    );
  });

  it('never rounds: extra non-zero digits are always refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: 9 }), (cents, extra) => {
        const text = `${toDecimalString({ minor: cents, currency: 'USD' })}${extra}`;
        expect(() => parseMoney(text, 'USD')).toThrow(/decimal places/);
      }),
    );
  });
});
