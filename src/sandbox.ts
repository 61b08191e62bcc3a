// `payrouter/sandbox`: local stand-ins of the Walleot and Stripe APIs and an x402 facilitator, for tests, demos and users without keys.

import type { Logger } from './core/logger.js';
import { StripeProvider } from './providers/stripe/provider.js';
import { WalleotProvider } from './providers/walleot/provider.js';
import { X402Provider } from './providers/x402/provider.js';
import { SandboxClock } from './sandbox/harness.js';
import { payThroughLink, type SandboxPayOptions, type SandboxPayResult } from './sandbox/pay.js';
import { type StripeSandbox, startStripeSandbox } from './sandbox/stripe.js';
import { startWalleotSandbox, type WalleotSandbox } from './sandbox/walleot.js';
import { startX402Facilitator, type X402FacilitatorSandbox } from './sandbox/x402-facilitator.js';

export { type Fault, type RecordedRequest, SandboxClock } from './sandbox/harness.js';
export type { SandboxPayOptions, SandboxPayResult } from './sandbox/pay.js';
export { type StripeSandbox, type StripeSandboxOptions, startStripeSandbox } from './sandbox/stripe.js';
export { SandboxConfigError } from './sandbox/tables.js';
export { startWalleotSandbox, type WalleotSandbox, type WalleotSandboxOptions } from './sandbox/walleot.js';
export {
  SANDBOX_X402_ASSET,
  SANDBOX_X402_NETWORK,
  type SandboxSigner,
  type SandboxWallet,
  startX402Facilitator,
  type X402FacilitatorOptions,
  type X402FacilitatorSandbox,
} from './sandbox/x402-facilitator.js';

export interface SandboxOptions {
  /** Walleot's port; Stripe takes the next one. 0 (default) picks free ports. */
  port?: number;
  walleotPort?: number;
  stripePort?: number;
  /** The x402 facilitator's port (default: a free one). */
  x402Port?: number;
  /** All stand-ins share this clock (default: a fresh one). */
  clock?: SandboxClock;
}

export interface Sandbox {
  walleot: WalleotSandbox;
  stripe: StripeSandbox;
  /** The x402 facilitator stand-in (verify, settle, supported) with funded test wallets; needs viem (throws without it). */
  x402: X402FacilitatorSandbox;
  clock: SandboxClock;
  /** Provider instances pointed at this sandbox, ready for `new PayRouter(server, { providers })`. */
  providers(options?: { logger?: Logger; webhooks?: boolean }): {
    walleot: WalleotProvider;
    stripe: StripeProvider;
  };
  /**
   * An X402Provider pointed at the facilitator stand-in: paid by agents themselves. Not among
   * `providers()`, so a router built from `Object.values(sandbox.providers())` offers no machine
   * payments unless asked. Needs viem (for the stand-in) and @x402/core (for the provider).
   */
  x402Provider(options?: { logger?: Logger }): X402Provider;
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

/** Start the stand-ins on 127.0.0.1. */
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
  // viem is an optional peer: without it the sandbox has no x402 facilitator, and says so when asked.
  let x402: X402FacilitatorSandbox | undefined;
  let x402Missing: Error | undefined;
  try {
    x402 = await startX402Facilitator({ port: options.x402Port ?? 0, clock });
  } catch (error) {
    if (!(error instanceof Error && error.message.includes('needs the package viem'))) {
      await Promise.all([walleot.close(), stripe.close()]);
      throw error;
    }
    x402Missing = error;
  }
  const facilitator = (): X402FacilitatorSandbox => {
    if (x402 === undefined) throw x402Missing ?? new Error('no x402 facilitator');
    return x402;
  };
  return {
    walleot,
    stripe,
    get x402() {
      return facilitator();
    },
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
    x402Provider: ({ logger } = {}) => {
      const running = facilitator();
      return new X402Provider({
        payTo: running.payTo,
        network: running.network,
        facilitatorUrl: running.url,
        testMode: true,
        timeoutMs: 5000,
        ...(logger ? { logger } : {}),
      });
    },
    pay: (paymentUrl, payOptions) => payThroughLink(paymentUrl, [walleot.origin, stripe.origin], payOptions),
    reset: () => {
      walleot.reset();
      stripe.reset();
      x402?.reset();
    },
    close: async () => {
      await Promise.all([walleot.close(), stripe.close(), x402?.close()]);
    },
  };
}
