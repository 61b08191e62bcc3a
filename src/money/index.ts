export { currencyExponent, isKnownCurrency, knownCurrencies, normalizeCurrency } from './currencies.js';
export {
  formatMoney,
  type Money,
  money,
  type PriceInput,
  parseMoney,
  rescaleExact,
  sameMoney,
  toDecimalString,
} from './money.js';
