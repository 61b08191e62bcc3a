// Payment providers for the examples: the real ones when their keys are in the environment,
// otherwise the built-in sandbox (local stand-ins of the Walleot and Stripe APIs with a checkout
// page where you press Pay), so every example runs without an account.
//
// The examples import the package by name, as your code does: in this repository `'payrouter'`
// resolves to the package itself (Node's self-reference through package.json "exports"), that is
// to the built dist/, so run `npm run build` once first (`npm test` does).

import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { type PaymentProvider, StripeProvider, WalleotProvider } from 'payrouter/providers';
import { type Sandbox, startSandbox } from 'payrouter/sandbox';

export interface ExampleProviders {
  walleot?: WalleotProvider;
  stripe?: StripeProvider;
  /** Set when no keys were found and the local sandbox stands in for the providers. */
  sandbox?: Sandbox;
  list: PaymentProvider[];
  /** Stops the sandbox, if one was started. */
  close(): Promise<void>;
}

type ProviderName = 'walleot' | 'stripe';

/**
 * `WALLEOT_API_KEY` and `STRIPE_SECRET_KEY` (+ `STRIPE_WEBHOOK_SECRET`) select the real providers.
 * When none is set, or one that `require` names is missing, the sandbox serves every provider.
 */
export async function paymentProviders(
  options: { require?: ProviderName[] } = {},
): Promise<ExampleProviders> {
  const walleotKey = process.env.WALLEOT_API_KEY;
  const stripeKey = process.env.STRIPE_SECRET_KEY;
  const missing = (options.require ?? []).filter((name) => (name === 'walleot' ? !walleotKey : !stripeKey));

  if ((walleotKey || stripeKey) && missing.length === 0) {
    const walleot = walleotKey ? new WalleotProvider({ apiKey: walleotKey }) : undefined;
    const stripe = stripeKey
      ? new StripeProvider({ apiKey: stripeKey, webhookSecret: process.env.STRIPE_WEBHOOK_SECRET })
      : undefined;
    const list = [walleot, stripe].filter((p): p is WalleotProvider | StripeProvider => p !== undefined);
    return { walleot, stripe, list, close: async () => {} };
  }

  const sandbox = await startSandbox();
  const envName = { walleot: 'WALLEOT_API_KEY', stripe: 'STRIPE_SECRET_KEY' } as const;
  const why =
    missing.length > 0
      ? `${missing.map((name) => envName[name]).join(' and ')} not set`
      : 'no WALLEOT_API_KEY or STRIPE_SECRET_KEY';
  // stderr, never stdout: on stdio servers stdout carries the protocol.
  console.error(
    `payrouter example: ${why}; using the local sandbox (Walleot ${sandbox.walleot.origin}, Stripe ${sandbox.stripe.origin})`,
  );
  const { walleot, stripe } = sandbox.providers();
  return { walleot, stripe, sandbox, list: [walleot, stripe], close: () => sandbox.close() };
}

/** True when this module is the program being run (`node --import tsx examples/x.ts`), not imported. */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && moduleUrl === pathToFileURL(realpathSync(entry)).href;
}
