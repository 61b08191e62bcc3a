import { MoneyError } from '../errors.js';
import { currencyExponent, currencySymbol, normalizeCurrency } from './currencies.js';

/** An exact amount: integer minor units of a currency (USD cents, whole yen, USDC millionths). */
export interface Money {
  readonly minor: number;
  readonly currency: string;
}

/** How prices are written by server authors: a decimal number or decimal string plus a currency. */
export interface PriceInput {
  amount: number | string;
  currency: string;
}

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/**
 * Parse a decimal amount exactly, by digits, never by float multiplication:
 * `0.29` USD is 29, `1.005` USD is refused, `500` JPY is 500, `1.000001` USDC is 1000001.
 * Numbers are accepted only when their shortest string form is a plain decimal (so `1e-9`, `NaN`,
 * `0.1 + 0.2` are refused rather than silently rounded).
 */
export function parseMoney(amount: number | string, currency: string): Money {
  const code = normalizeCurrency(currency);
  if (code === undefined) throw new MoneyError(`Unknown currency "${String(currency)}"`);
  let text: string;
  if (typeof amount === 'number') {
    if (!Number.isFinite(amount)) throw new MoneyError(`Amount must be a finite number, got ${amount}`);
    text = String(amount);
  } else if (typeof amount === 'string') {
    text = amount.trim();
  } else {
    throw new MoneyError(`Amount must be a decimal number or string, got ${typeof amount}`);
  }
  const match = DECIMAL.exec(text);
  if (!match) {
    throw new MoneyError(`Amount "${text}" is not a plain positive decimal (like 0.25 or "12.50")`);
  }
  const exponent = currencyExponent(code);
  const whole = match[1] as string;
  const fraction = match[2] ?? '';
  if (fraction.replace(/0+$/, '').length > exponent) {
    throw new MoneyError(
      `Amount ${text} ${code} has more decimal places than ${code} allows (${exponent}); it would need rounding`,
    );
  }
  const digits = (whole + fraction.padEnd(exponent, '0').slice(0, exponent)).replace(/^0+(?=\d)/, '');
  const minor = Number(digits);
  if (!Number.isSafeInteger(minor)) throw new MoneyError(`Amount ${text} ${code} is too large`);
  if (minor <= 0) throw new MoneyError(`Amount must be greater than zero, got ${text} ${code}`);
  return Object.freeze({ minor, currency: code });
}

/** Build Money from minor units, validating them. */
export function money(minor: number, currency: string): Money {
  const code = normalizeCurrency(currency);
  if (code === undefined) throw new MoneyError(`Unknown currency "${String(currency)}"`);
  if (!Number.isSafeInteger(minor) || minor <= 0) {
    throw new MoneyError(`Minor units must be a positive safe integer, got ${minor}`);
  }
  return Object.freeze({ minor, currency: code });
}

/** The exact decimal string of an amount: 29 USD cents -> "0.29", 500 JPY -> "500". */
export function toDecimalString(m: Money): string {
  const exponent = currencyExponent(m.currency);
  if (exponent === 0) return String(m.minor);
  const digits = String(m.minor).padStart(exponent + 1, '0');
  return `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}

/**
 * Human formatting: `$0.25`, `¥500`, `€12.50`, `1.50 USDC`, `5.125 KWD`.
 * Always shows every minor digit so the user sees the exact amount charged.
 */
export function formatMoney(m: Money): string {
  // A server charges a few amounts over and over: each is formatted once.
  const key = `${m.minor} ${m.currency}`;
  let text = formatted.get(key);
  if (text === undefined) {
    text = format(m);
    if (formatted.size >= FORMATTED_KEPT) formatted.clear();
    formatted.set(key, text);
  }
  return text;
}

const formatted = new Map<string, string>();
const FORMATTED_KEPT = 1024;

function format(m: Money): string {
  const decimal = toDecimalString(m);
  const [whole, fraction] = decimal.split('.') as [string, string | undefined];
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const text = fraction === undefined ? grouped : `${grouped}.${fraction}`;
  const symbol = currencySymbol(m.currency);
  return symbol === undefined ? `${text} ${m.currency}` : `${symbol}${text}`;
}

/**
 * Convert to another exponent exactly, or return undefined when it would need rounding.
 * Used by providers whose wire unit differs from the currency's minor unit (Walleot cents for
 * USDC, Stripe two-decimal ISK).
 */
export function rescaleExact(minor: number, fromExponent: number, toExponent: number): number | undefined {
  if (toExponent >= fromExponent) {
    const scaled = minor * 10 ** (toExponent - fromExponent);
    return Number.isSafeInteger(scaled) ? scaled : undefined;
  }
  const divisor = 10 ** (fromExponent - toExponent);
  return minor % divisor === 0 ? minor / divisor : undefined;
}
