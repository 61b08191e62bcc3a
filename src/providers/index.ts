export { StripeProvider, type StripeProviderOptions } from './stripe.js';
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
} from './types.js';
export { WalleotProvider, type WalleotProviderOptions } from './walleot.js';
