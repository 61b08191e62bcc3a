// The `payrouter` entry point: the router, the stores and the types server authors use.
export {
  ConfigError,
  isPayRouterError,
  MoneyError,
  PayRouterError,
  ProviderError,
  type ProviderErrorCode,
  WebhookError,
} from './core/errors.js';
export { isFinalStatus, PAYMENT_STATUSES, type PaymentStatus } from './core/intent/status.js';
export {
  type ConsoleLoggerOptions,
  consoleLogger,
  type Logger,
  type LogLevel,
  namespaced,
  redactingLogger,
  silentLogger,
} from './core/logger.js';
export { formatMoney, type Money, type PriceInput, parseMoney, toDecimalString } from './core/money/index.js';
export type {
  ClientSupport,
  EligibleProvider,
  Exclusion,
  RouteAction,
  RouteDecision,
  RoutingPolicy,
} from './core/route/route.js';
export type { LedgerEntry, LedgerQuery } from './engine/ledger/ledger.js';
export { receiptOf } from './engine/ledger/ledger.js';
export type { OperatorResult } from './engine/ledger/operator.js';
export type { LimitHit, Period, ToolLimits } from './engine/limits/limits.js';
export type {
  BeforeChargeHook,
  ChargeContext,
  PaymentEvent,
  PaymentFlow,
  PayRouterHooks,
  ProviderConfigMap,
} from './engine/options.js';
export type { PaymentContext, PriceSpec } from './engine/paid-tool.js';
export {
  LIMIT_META_KEY,
  type LimitInfo,
  RECEIPT_META_KEY,
  type ReceiptInfo,
} from './mcp/limit-result.js';
export {
  type InstallOptions,
  type PaidMcpServer,
  PayRouter,
  type PayRouterOptions,
} from './mcp/pay-router.js';
export { PAYMENT_META_KEY, type PaymentAlternative, type PaymentInfo } from './mcp/payment-result.js';
export type { SubjectResolver, ToolExtra } from './mcp/subject.js';
export type {
  PaidRegisterTool,
  PaidRegistration,
  PaidToolCallback,
  PaidToolConfig,
  PaidToolExtra,
  ToolArgs,
  ToolPrice,
} from './mcp/tool-config.js';
export {
  type Binding,
  type IntentRecord,
  type MemoryStoreOptions,
  memoryStore,
  type PaymentStore,
  type ProviderAttempt,
  type RedisClient,
  type RedisPipeline,
  type RedisStoreOptions,
  type RedisSubscriberClient,
  redisStore,
  type StatusChange,
} from './store/index.js';
export type { UsageCounter, UsageOutcome, UsageReservation, UsageStore } from './store/types.js';
