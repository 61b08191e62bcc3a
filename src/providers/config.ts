import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { PaymentProvider } from '../core/provider.js';
import { StripeProvider, type StripeProviderOptions } from './stripe/provider.js';
import { WalleotProvider, type WalleotProviderOptions } from './walleot/provider.js';

/** The PayMCP-style configuration mapping: `{ walleot: { apiKey }, stripe: { apiKey } }`. */
export interface ProviderConfigMap {
  walleot?: WalleotProviderOptions;
  stripe?: StripeProviderOptions;
}

/**
 * Provider instances from the PayMCP-style mapping, Walleot first. Cheap: each provider loads its
 * SDK (undici, stripe) on its first request, so building them loads neither.
 *
 * @example
 * ```ts
 * import { providersFromConfig } from 'payrouter/providers';
 * const providers = providersFromConfig({
 *   walleot: { apiKey: process.env.WALLEOT_API_KEY },
 *   stripe: { apiKey: process.env.STRIPE_SECRET_KEY! },
 * });
 * ```
 */
export function providersFromConfig(
  map: ProviderConfigMap,
  options: { logger?: Logger } = {},
): PaymentProvider[] {
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw new ConfigError('providersFromConfig needs an object such as { walleot: { apiKey } }');
  }
  const unknown = Object.keys(map).filter((k) => k !== 'walleot' && k !== 'stripe');
  if (unknown.length > 0) {
    throw new ConfigError(
      `Unknown provider "${unknown[0]}" in providers: the mapping form knows "walleot" and "stripe"; pass other providers as instances`,
    );
  }
  const logger = options.logger === undefined ? {} : { logger: options.logger };
  const providers: PaymentProvider[] = [];
  if (map.walleot) providers.push(new WalleotProvider({ ...logger, ...map.walleot }));
  if (map.stripe) providers.push(new StripeProvider({ ...logger, ...map.stripe }));
  return providers;
}
