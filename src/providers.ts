export type {
  AmountLimits,
  Charge,
  CreatedPayment,
  CreatePaymentOptions,
  FeeModel,
  PaymentProvider,
  ProviderCapabilities,
  ProviderPaymentState,
  ProviderWebhookEvent,
} from './core/provider.js';
export { StripeProvider, type StripeProviderOptions } from './providers/stripe/provider.js';
export { WalleotProvider, type WalleotProviderOptions } from './providers/walleot/provider.js';
