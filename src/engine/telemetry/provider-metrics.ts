import { ProviderError } from '../../core/errors.js';
import type { PaymentProvider } from '../../core/provider.js';
import type { Telemetry } from './telemetry.js';

/** Every request a provider makes for us, by the method that makes it, as `payrouter.operation`. */
const OPERATIONS: Readonly<Record<string, string>> = {
  createPayment: 'create',
  getPayment: 'status',
  cancelPayment: 'cancel',
  refundPayment: 'refund',
  verifyCredential: 'verify',
  settleCredential: 'settle',
};

const DURATION = 'payrouter.provider.duration';
const ERRORS = 'payrouter.provider.errors';

/**
 * The provider as the engine uses it, with each provider request timed
 * (`payrouter.provider.duration`, ms) and each failure counted (`payrouter.provider.errors`, by
 * ProviderError code), both by provider and operation. A settlement the facilitator declines
 * counts as an error (`settlement_failed`). Everything else passes through to the provider itself;
 * a method replaced on the provider later is the one called.
 */
export function timedProvider(telemetry: Telemetry, provider: PaymentProvider): PaymentProvider {
  const wrapped = new Map<string, { original: unknown; timed: unknown }>();
  return new Proxy(provider, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof key !== 'string' || typeof value !== 'function') return value;
      const known = wrapped.get(key);
      if (known?.original === value) return known.timed;
      const operation = OPERATIONS[key];
      if (operation === undefined) {
        // Called on the provider itself: its methods may use its private fields.
        const bound = (value as (...args: unknown[]) => unknown).bind(target);
        wrapped.set(key, { original: value, timed: bound });
        return bound;
      }
      const attributes = { 'payrouter.provider': target.id, 'payrouter.operation': operation };
      const method = value as (...args: unknown[]) => Promise<unknown>;
      const measured = async (args: unknown[]) => {
        const started = performance.now();
        try {
          const result = await method.apply(target, args);
          if (operation === 'settle' && (result as { ok?: unknown } | undefined)?.ok === false)
            telemetry.count(ERRORS, {
              ...attributes,
              'payrouter.error': 'settlement_failed',
            });
          return result;
        } catch (error) {
          telemetry.count(ERRORS, {
            ...attributes,
            'payrouter.error': error instanceof ProviderError ? error.code : 'error',
          });
          throw error;
        } finally {
          telemetry.observe(DURATION, performance.now() - started, attributes);
        }
      };
      // With no meter SDK behind either instrument, the request is made as is: nothing to time.
      const timed = (...args: unknown[]) => {
        if (telemetry.observes(DURATION) || telemetry.counts(ERRORS)) return measured(args);
        try {
          return Promise.resolve(method.apply(target, args));
        } catch (error) {
          return Promise.reject(error);
        }
      };
      wrapped.set(key, { original: value, timed });
      return timed;
    },
  });
}
