// `payrouter/sandbox`: local stand-ins of the Walleot and Stripe APIs, for tests, demos and users without keys.

import type { Logger } from './core/logger.js';
import { StripeProvider } from './providers/stripe/provider.js';
import { WalleotProvider } from './providers/walleot/provider.js';
import { SandboxClock } from './sandbox/harness.js';
import { type StripeSandbox, startStripeSandbox } from './sandbox/stripe.js';
import { startWalleotSandbox, type WalleotSandbox } from './sandbox/walleot.js';

export { type Fault, type RecordedRequest, SandboxClock } from './sandbox/harness.js';
export { type StripeSandbox, type StripeSandboxOptions, startStripeSandbox } from './sandbox/stripe.js';
export { SandboxConfigError } from './sandbox/tables.js';
export { startWalleotSandbox, type WalleotSandbox, type WalleotSandboxOptions } from './sandbox/walleot.js';

export interface SandboxOptions {
  /** Walleot's port; Stripe takes the next one. 0 (default) picks free ports. */
  port?: number;
  walleotPort?: number;
  stripePort?: number;
  /** Both stand-ins share this clock (default: a fresh one). */
  clock?: SandboxClock;
}

export interface Sandbox {
  walleot: WalleotSandbox;
  stripe: StripeSandbox;
  clock: SandboxClock;
  /** Provider instances pointed at this sandbox, ready for `new PayRouter(server, { providers })`. */
  providers(options?: { logger?: Logger; webhooks?: boolean }): {
    walleot: WalleotProvider;
    stripe: StripeProvider;
  };
  reset(): void;
  close(): Promise<void>;
}

/** Start both stand-ins on 127.0.0.1. */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const clock = options.clock ?? new SandboxClock();
  const walleotPort = options.walleotPort ?? options.port ?? 0;
  const stripePort = options.stripePort ?? (options.port ? options.port + 1 : 0);
  const walleot = await startWalleotSandbox({ port: walleotPort, clock });
  let stripe: StripeSandbox;
  try {
    stripe = await startStripeSandbox({ port: stripePort, clock });
  } catch (error) {
    await walleot.close();
    throw error;
  }
  return {
    walleot,
    stripe,
    clock,
    providers: ({ logger, webhooks = true } = {}) => ({
      walleot: new WalleotProvider({
        apiKey: walleot.apiKey,
        baseUrl: walleot.baseUrl,
        ...(logger ? { logger } : {}),
      }),
      stripe: new StripeProvider({
        apiKey: stripe.apiKey,
        ...(webhooks ? { webhookSecret: stripe.webhookSecret } : {}),
        stripe: { ...stripe.sdkOptions, maxNetworkRetries: 1, timeout: 5000 },
        ...(logger ? { logger } : {}),
      }),
    }),
    reset: () => {
      walleot.reset();
      stripe.reset();
    },
    close: async () => {
      await Promise.all([walleot.close(), stripe.close()]);
    },
  };
}
