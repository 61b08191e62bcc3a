/**
 * The stand-ins' own copy of what the providers publish: currency lists, amount units, minimums
 * and maximums. Deliberately not imported from payrouter's provider or money code: a test
 * oracle must not be the code under test. When a provider's published numbers change, both
 * copies change, and tests comparing them catch a slip.
 */

const list = (text: string): ReadonlySet<string> => new Set(text.split(' '));

/** ISO 4217 minor-unit exponents (plus USDC, 6), lowercase as on the wire. */
const ISO_EXPONENTS: ReadonlyMap<string, number> = new Map([
  ...[...list('bif clp djf gnf isk jpy kmf krw pyg rwf ugx uyi vnd vuv xaf xof xpf')].map(
    (c) => [c, 0] as const,
  ),
  ...[...list('bhd iqd jod kwd lyd omr tnd')].map((c) => [c, 3] as const),
  ...[...list('clf uyw')].map((c) => [c, 4] as const),
  ...[
    ...list(
      'mga aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bmd bnd bob brl bsd btn bwp byn bzd ' +
        'cad cdf chf cny cop crc cup cve czk dkk dop dzd egp ern etb eur fjd fkp gbp gel ghs gip gmd gtq ' +
        'gyd hkd hnl htg huf idr ils inr irr jmd kes kgs khr kpw kyd kzt lak lbp lkr lrd lsl mad mdl mkd ' +
        'mmk mnt mop mru mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd pab pen pgk php pkr pln qar ron ' +
        'rsd rub sar sbd scr sdg sek sgd shp sle sos srd ssp stn svc syp szl thb tjs tmt top try ttd twd ' +
        'tzs uah usd uyu uzs ves wst xcd yer zar zmw zwg',
    ),
  ].map((c) => [c, 2] as const),
  ['usdc', 6],
]);

/** The ISO minor-unit exponent of a lowercase currency code, or undefined for an unknown code. */
export function isoExponent(currency: string): number | undefined {
  return ISO_EXPONENTS.get(currency);
}

// Walleot: integer cents; no documented minimum or maximum.
export const WALLEOT_WIRE_EXPONENT = 2;

// Stripe (docs.stripe.com/currencies), in Stripe's own amount unit.
export const STRIPE_CURRENCIES: ReadonlySet<string> = list(
  'aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd ' +
    'cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq ' +
    'gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd ' +
    'lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk ' +
    'php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd szl thb tjs tnd top try ' +
    'ttd twd tzs uah ugx usd uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw',
);
export const STRIPE_ZERO_DECIMAL: ReadonlySet<string> = list(
  'bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf',
);
export const STRIPE_THREE_DECIMAL: ReadonlySet<string> = list('bhd jod kwd omr tnd');
const STRIPE_MINIMUMS: Readonly<Record<string, number>> = {
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
};
/** At most 8 digits (99999999 = $999,999.99). */
export const STRIPE_MAX_AMOUNT = 99_999_999;

export function stripeMinimum(currency: string): number {
  return Object.hasOwn(STRIPE_MINIMUMS, currency) ? STRIPE_MINIMUMS[currency]! : 1;
}

/** Decimals of Stripe's amount unit (ISK and HUF are two-decimal at Stripe). */
export function stripeExponent(currency: string): number {
  if (STRIPE_ZERO_DECIMAL.has(currency)) return 0;
  if (STRIPE_THREE_DECIMAL.has(currency)) return 3;
  return 2;
}

const SYMBOLS: Readonly<Record<string, string>> = { usd: '$', eur: '€', gbp: '£', jpy: '¥' };

/**
 * How a checkout page or an error message shows an amount given in units of `exponent` decimals:
 * `$0.50`, `¥50`, `£0.30`, `175.00 HUF`, `$999,999.99`. Digits only, never float arithmetic.
 */
export function formatAmount(amount: number, exponent: number, currency: string): string {
  const digits = String(amount).padStart(exponent + 1, '0');
  const whole = exponent === 0 ? digits : digits.slice(0, -exponent);
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const text = exponent === 0 ? grouped : `${grouped}.${digits.slice(-exponent)}`;
  const symbol = SYMBOLS[currency.toLowerCase()];
  return symbol === undefined ? `${text} ${currency.toUpperCase()}` : `${symbol}${text}`;
}

/** Thrown for invalid stand-in options. */
export class SandboxConfigError extends Error {
  override readonly name = 'SandboxConfigError';
}
