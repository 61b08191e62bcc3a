// `payrouter/sandbox`: local stand-ins of the Walleot and Stripe APIs, for tests, demos and users without keys.

import type { Logger } from './core/logger.js';
import { StripeProvider } from './providers/stripe/provider.js';
import { WalleotProvider } from './providers/walleot/provider.js';
import { SandboxClock } from './sandbox/harness.js';
import { payThroughLink, type SandboxPayOptions, type SandboxPayResult } from './sandbox/pay.js';
import { type StripeSandbox, startStripeSandbox } from './sandbox/stripe.js';
import { startWalleotSandbox, type WalleotSandbox } from './sandbox/walleot.js';

export { type Fault, type RecordedRequest, SandboxClock } from './sandbox/harness.js';
export type { SandboxPayOptions, SandboxPayResult } from './sandbox/pay.js';
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
  /**
   * Play the payer: complete the payment behind `paymentUrl`, the way a person in a browser
   * would. `paymentUrl` is a stand-in checkout link (Walleot or Stripe; what `payment_url` holds
   * without `publicUrl`) or a payrouter hosted pay page (`{publicUrl}/pay/{id}`), where the
   * method is chosen first. Resolves once the stand-in recorded the payment; the router learns of
   * it as it would in production (poll, webhook, return page). Rejects with a clear message when
   * the link leads to no checkout page of this sandbox.
   *
   * @example
   * ```ts
   * const result = await client.callTool({ name: 'report', arguments: { topic: 'tides' } });
   * const payment = result._meta?.['payrouter/payment'] as PaymentInfo;
   * await sandbox.pay(payment.payment_url!, { method: 'stripe' });
   * await client.callTool({ name: 'confirm_payment', arguments: { payment_id: payment.payment_id } });
   * ```
   */
  pay(paymentUrl: string, options?: SandboxPayOptions): Promise<SandboxPayResult>;
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
        testMode: true,
        ...(logger ? { logger } : {}),
      }),
      stripe: new StripeProvider({
        apiKey: stripe.apiKey,
        ...(webhooks ? { webhookSecret: stripe.webhookSecret } : {}),
        stripe: { ...stripe.sdkOptions, maxNetworkRetries: 1, timeout: 5000 },
        ...(logger ? { logger } : {}),
      }),
    }),
    pay: (paymentUrl, payOptions) => payThroughLink(paymentUrl, [walleot.origin, stripe.origin], payOptions),
    reset: () => {
      walleot.reset();
      stripe.reset();
    },
    close: async () => {
      await Promise.all([walleot.close(), stripe.close()]);
    },
  };
}
