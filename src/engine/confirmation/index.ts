export {
  type Confirmation,
  ConfirmationLayer,
  type ConfirmationOptions,
  type WaitForOptions,
} from './confirmation-layer.js';
export { RateBudget, TokenBucket, type TokenBucketOptions } from './rate-budget.js';
export { applyProviderStateToStore, type StatusUpdate, withProviderState } from './status-update.js';
