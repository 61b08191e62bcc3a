export type {
  AmountLimits,
  Charge,
  CreatedPayment,
  CreatePaymentOptions,
  FeeModel,
  PaymentAction,
  PaymentProvider,
  ProviderCapabilities,
  ProviderPaymentState,
  ProviderWebhookEvent,
} from './core/provider.js';
export { type ProviderConfigMap, providersFromConfig } from './providers/config.js';
export { StripeProvider, type StripeProviderOptions } from './providers/stripe/provider.js';
export { WalleotProvider, type WalleotProviderOptions } from './providers/walleot/provider.js';
