import type { PaymentProvider } from '../../src/core/provider.js';

/**
 * The same provider, declaring `capabilities.testMode` as given: pages must show (or not show) the
 * test-mode banner from what the provider says, whatever the provider's own default is.
 */
export function withTestMode<P extends PaymentProvider>(provider: P, testMode: boolean): P {
  const capabilities = Object.freeze({ ...provider.capabilities, testMode });
  return new Proxy(provider, {
    get(target, property) {
      if (property === 'capabilities') return capabilities;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
