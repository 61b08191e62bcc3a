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
export { StripeProvider, type StripeProviderOptions } from './providers/stripe.js';
export { WalleotProvider, type WalleotProviderOptions } from './providers/walleot.js';
