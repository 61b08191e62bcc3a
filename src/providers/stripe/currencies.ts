import { currencyExponent, normalizeCurrency } from '../../core/money/currencies.js';
import { type Money, money, rescaleExact } from '../../core/money/money.js';
import type { AmountLimits } from '../../core/provider.js';

/**
 * Stripe's currency rules, in Stripe's own amount unit (docs.stripe.com/currencies).
 * Shared by StripeProvider (to refuse what Stripe would refuse, before any request) and by the
 * Stripe sandbox stand-in (to answer as Stripe would). Codes are lowercase, as on the wire.
 */

/** Presentment currencies Stripe accepts that payrouter's exponent table also knows. */
export const STRIPE_CURRENCIES: ReadonlySet<string> = new Set(
  (
    'aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd ' +
    'cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq ' +
    'gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd ' +
    'lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk ' +
    'php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd szl thb tjs tnd top try ' +
    'ttd twd tzs uah ugx usd uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw'
  ).split(' '),
);

/** Currencies whose Stripe amount is in whole units. */
export const STRIPE_ZERO_DECIMAL: ReadonlySet<string> = new Set(
  'bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf'.split(' '),
);

/** Three-decimal currencies: the amount's last digit must be 0 (5.124 KWD is refused, 5.120 is 5120). */
export const STRIPE_THREE_DECIMAL: ReadonlySet<string> = new Set('bhd jod kwd omr tnd'.split(' '));

/**
 * Supported, but left out of StripeProvider's default list: UGX is zero-decimal only for
 * backward compatibility (Stripe asks integrators to check before enabling it).
 */
export const STRIPE_OPT_IN_CURRENCIES: ReadonlySet<string> = new Set(['ugx']);

/** Minimum charge per currency in Stripe units ("$0.50 US or equivalent"); others: 1 unit. */
export const STRIPE_MINIMUMS: Readonly<Record<string, number>> = Object.freeze({
  usd: 50,
  eur: 50,
  jpy: 50,
  aud: 50,
  cad: 50,
  chf: 50,
  nzd: 50,
  sgd: 50,
  brl: 50,
  inr: 50,
  gbp: 30,
  bgn: 100,
  aed: 200,
  myr: 200,
  pln: 200,
  ron: 200,
  dkk: 250,
  nok: 300,
  sek: 300,
  hkd: 400,
  mxn: 1000,
  czk: 1500,
  huf: 17500,
});

/** Stripe accepts at most 8 digits (99999999 = $999,999.99). */
export const STRIPE_MAX_AMOUNT = 99_999_999;

/** Number of decimals in Stripe's amount unit for a supported currency (ISK and HUF are two-decimal). */
export function stripeExponent(currency: string): number {
  const code = currency.toLowerCase();
  if (STRIPE_ZERO_DECIMAL.has(code)) return 0;
  if (STRIPE_THREE_DECIMAL.has(code)) return 3;
  return 2;
}

export function stripeMinimum(currency: string): number {
  return STRIPE_MINIMUMS[currency.toLowerCase()] ?? 1;
}

/**
 * Why Stripe would refuse this amount (in Stripe units) for reasons of unit, not size, or
 * undefined: three-decimal amounts must end in 0 and ISK amounts must be whole krónur.
 */
export function stripeUnitRefusal(amount: number, currency: string): string | undefined {
  const code = currency.toLowerCase();
  if (STRIPE_THREE_DECIMAL.has(code) && amount % 10 !== 0) {
    return `${code.toUpperCase()} amounts must end in 0 at Stripe (three-decimal currency)`;
  }
  if (code === 'isk' && amount % 100 !== 0) {
    return 'ISK amounts must be whole krónur at Stripe (divisible by 100)';
  }
  return undefined;
}

/**
 * The smallest and largest amounts Stripe accepts, expressed in another exponent (payrouter's
 * minor units), counting only amounts that convert exactly and pass the unit rules.
 */
export function stripeLimitsIn(currency: string, exponent: number): AmountLimits {
  const stripeExp = stripeExponent(currency);
  const code = currency.toLowerCase();
  // Stripe units per one of ours (when ours is coarser), or ours per one Stripe unit (when finer).
  const up = stripeExp >= exponent ? 10 ** (stripeExp - exponent) : 1;
  const down = stripeExp < exponent ? 10 ** (exponent - stripeExp) : 1;
  // In our units, amounts must be multiples of `step` to satisfy Stripe's unit rules.
  let step = down;
  if (STRIPE_THREE_DECIMAL.has(code)) step = lcm(step, 10 / gcd(10, up));
  if (code === 'isk') step = lcm(step, 100 / gcd(100, up));
  const minStripe = stripeMinimum(code);
  const minOurs = Math.ceil((minStripe * down) / up);
  const maxOurs = Math.floor((STRIPE_MAX_AMOUNT * down) / up);
  return { min: Math.ceil(minOurs / step) * step, max: Math.floor(maxOurs / step) * step };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

/** A payrouter amount converted to Stripe's unit, or the reason it cannot be charged as is. */
export type StripeConversion = { amount: number; currency: string } | { refusal: string };

/**
 * Convert payrouter minor units (ISO 4217 exponents) to Stripe's amount unit, exactly:
 * zero-decimal currencies are whole units (MGA: ISO has 2 decimals, Stripe 0), ISK is
 * two-decimal at Stripe (x100), three-decimal amounts must end in 0. Anything that would need
 * rounding is refused. Size limits (minimum, 8 digits) are checked separately.
 */
export function convertToStripe(m: Money): StripeConversion {
  const code = normalizeCurrency(m.currency);
  const wire = code?.toLowerCase();
  if (code === undefined || wire === undefined || !STRIPE_CURRENCIES.has(wire)) {
    return { refusal: `Stripe does not support the currency ${m.currency}` };
  }
  const amount = rescaleExact(m.minor, currencyExponent(code), stripeExponent(wire));
  if (amount === undefined) {
    return {
      refusal: `${code} amounts at Stripe are whole units; ${m.minor} minor units would need rounding`,
    };
  }
  const unitRefusal = stripeUnitRefusal(amount, wire);
  if (unitRefusal !== undefined) return { refusal: unitRefusal };
  return { amount, currency: wire };
}

/** The Stripe amount for this Money, or undefined when Stripe cannot represent it exactly. */
export function toStripeAmount(m: Money): number | undefined {
  const converted = convertToStripe(m);
  return 'amount' in converted ? converted.amount : undefined;
}

/** Back from a Stripe amount to payrouter Money, or undefined when it does not convert exactly. */
export function fromStripeAmount(amount: number, currency: string): Money | undefined {
  const code = normalizeCurrency(currency);
  if (code === undefined || !Number.isSafeInteger(amount) || amount <= 0) return undefined;
  const minor = rescaleExact(amount, stripeExponent(code), currencyExponent(code));
  return minor === undefined ? undefined : money(minor, code);
}
