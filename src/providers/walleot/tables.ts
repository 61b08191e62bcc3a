import { currencyExponent } from '../../core/money/currencies.js';
import { rescaleExact } from '../../core/money/money.js';
import type { AmountLimits } from '../../core/provider.js';

/**
 * Walleot's published numbers: its host, its wire unit (whole cents),
 * the largest charge we send and its per-key rate limits.
 */

/** Production API; there is no separate test host (test or live is chosen by the key). */
export const WALLEOT_DEFAULT_BASE_URL = 'https://api.walleot.com/v1';

/** Amounts travel as integer cents. */
export const WALLEOT_WIRE_EXPONENT = 2;

/** The largest single charge we send, in cents ($1,000,000.00); Walleot documents none. */
export const WALLEOT_MAX_CENTS = 100_000_000;

/** Per API key and minute. */
export const WALLEOT_STATUS_READS_PER_MINUTE = 1000;

export const WALLEOT_DEFAULT_CURRENCIES: readonly string[] = ['USD', 'USDC'];

/** One cent up to WALLEOT_MAX_CENTS, in the currency's own minor units (USDC: 10000 to 10^12). */
export function walleotLimitsFor(code: string): AmountLimits {
  const exponent = currencyExponent(code);
  return Object.freeze({
    min: rescaleExact(1, WALLEOT_WIRE_EXPONENT, exponent)!,
    max: rescaleExact(WALLEOT_MAX_CENTS, WALLEOT_WIRE_EXPONENT, exponent)!,
  });
}
