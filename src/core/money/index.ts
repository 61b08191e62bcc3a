export { currencyExponent, normalizeCurrency } from './currencies.js';
export {
  formatMoney,
  type Money,
  money,
  type PriceInput,
  parseMoney,
  rescaleExact,
  toDecimalString,
} from './money.js';
