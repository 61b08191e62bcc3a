export { ConfigError, MoneyError, PayRouterError, ProviderError, WebhookError } from './errors.js';
export type { Logger } from './logger.js';
export { consoleLogger, silentLogger } from './logger.js';
export { formatMoney, type Money, type PriceInput, parseMoney, toDecimalString } from './money/index.js';
export { isFinalStatus, PAYMENT_STATUSES, type PaymentStatus } from './status.js';
