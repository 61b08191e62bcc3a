// The `payrouter` entry point: the router, the stores and the types server authors use.
export {
  ConfigError,
  MoneyError,
  PayRouterError,
  ProviderError,
  type ProviderErrorCode,
  WebhookError,
} from './errors.js';
export { PAYMENT_META_KEY, type PaymentAlternative, type PaymentInfo } from './flows/payment-result.js';
export { consoleLogger, type Logger, redactingLogger, silentLogger } from './logger.js';
export { formatMoney, type Money, type PriceInput, parseMoney, toDecimalString } from './money/index.js';
export type {
  BeforeChargeHook,
  ChargeContext,
  PaymentEvent,
  PaymentFlow,
  PayRouterHooks,
  PayRouterOptions,
  ProviderConfigMap,
} from './router/options.js';
export type { PriceSpec } from './router/paid-tool.js';
export { PayRouter } from './router/pay-router.js';
export type { SubjectResolver, ToolExtra } from './router/subject.js';
export type { PaidToolConfig, ToolArgs, ToolPrice } from './router/tool-config.js';
export type {
  ClientSupport,
  EligibleProvider,
  Exclusion,
  RouteAction,
  RouteDecision,
  RoutingPolicy,
} from './routing/route.js';
export { isFinalStatus, PAYMENT_STATUSES, type PaymentStatus } from './status.js';
export {
  type Binding,
  type IntentRecord,
  type MemoryStoreOptions,
  memoryStore,
  type PaymentStore,
  type ProviderAttempt,
  type RedisStoreOptions,
  redisStore,
  type StatusChange,
} from './store/index.js';
