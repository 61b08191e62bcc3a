import type Stripe from 'stripe';

/** The stripe SDK's constructor, with its static `errors` and `webhooks`. */
export type StripeModule = typeof Stripe;

let loading: Promise<StripeModule> | undefined;

/**
 * The stripe SDK, imported on first use and shared by every StripeProvider: importing payrouter,
 * or building a provider, loads none of its files. A failed import is not kept, so a
 * later call tries again.
 */
export function loadStripe(): Promise<StripeModule> {
  loading ??= import('stripe').then(
    (module) => module.default,
    (error: unknown) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}
