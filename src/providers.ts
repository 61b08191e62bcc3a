export type {
  AmountLimits,
  Charge,
  CreatedPayment,
  CreatePaymentOptions,
  CredentialSettlement,
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
export {
  type FacilitatorAuthHeaders,
  X402_BASE_SEPOLIA_USDC,
  type X402Asset,
  X402Provider,
  type X402ProviderOptions,
} from './providers/x402/provider.js';
