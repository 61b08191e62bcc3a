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
