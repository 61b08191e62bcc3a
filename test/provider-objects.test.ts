import { inspect } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../src/core/errors.js';
import { PayRouter } from '../src/index.js';
import { StripeProvider, WalleotProvider } from '../src/providers.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const STRIPE_KEY = 'sk_test_51PrintMeNotStripeKey0123456789';
const WEBHOOK_SECRET = 'whsec_PrintMeNotWebhookSecret0123456789';
const WALLEOT_KEY = 'sk_test_PrintMeNotWalleotKey0123456789';

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await startSandbox();
});
afterAll(async () => {
  await sandbox?.close();
});

/** Every way a provider object ends up as text: console.log, util.inspect (deep), JSON, String. */
function printed(provider: object): string[] {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(args.map((a) => (typeof a === 'string' ? a : inspect(a))).join(' '));
  });
  try {
    console.log(provider);
    console.log({ nested: { provider } });
  } finally {
    log.mockRestore();
  }
  return [
    ...lines,
    inspect(provider, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
    JSON.stringify(provider),
    JSON.stringify({ providers: [provider] }),
    String(provider),
    `${provider}`,
  ];
}

describe('issue 11 item 15: a provider printed or serialised reveals no secret', () => {
  it('StripeProvider, before and after its SDK client exists', async () => {
    const provider = new StripeProvider({
      apiKey: STRIPE_KEY,
      webhookSecret: WEBHOOK_SECRET,
      stripe: { ...sandbox.stripe.sdkOptions, maxNetworkRetries: 0 },
      logger: quiet,
    });
    const check = () => {
      for (const text of printed(provider)) {
        expect(text).not.toContain(STRIPE_KEY);
        expect(text).not.toContain(STRIPE_KEY.slice(8, 30));
        expect(text).not.toContain(WEBHOOK_SECRET);
        expect(text).not.toContain('_apiKey');
        expect(text).not.toContain('webhookSecret');
      }
    };
    check();
    // The first request builds the SDK client (which holds the key): still nothing shows.
    await provider.getPayment('cs_test_missing').catch(() => {});
    check();
    expect(inspect(provider)).toBe("StripeProvider { id: 'stripe', mode: 'test' }");
    expect(String(provider)).toBe("StripeProvider { id: 'stripe', mode: 'test' }");
    expect(JSON.parse(JSON.stringify(provider))).toEqual({
      provider: 'StripeProvider',
      id: 'stripe',
      mode: 'test',
      webhooks: true,
    });
  });

  it('WalleotProvider, before and after its HTTP pool exists', async () => {
    const provider = new WalleotProvider({
      apiKey: WALLEOT_KEY,
      baseUrl: sandbox.walleot.baseUrl,
      logger: quiet,
    });
    const check = () => {
      for (const text of printed(provider)) {
        expect(text).not.toContain(WALLEOT_KEY);
        expect(text).not.toContain(WALLEOT_KEY.slice(8, 30));
        expect(text).not.toContain('apiKey');
      }
    };
    check();
    await provider.getPayment('sess_missing').catch(() => {});
    check();
    expect(inspect(provider)).toBe("WalleotProvider { id: 'walleot', mode: 'test' }");
    expect(JSON.parse(JSON.stringify(provider))).toEqual({
      provider: 'WalleotProvider',
      id: 'walleot',
      mode: 'test',
    });
    await provider.close();
  });
});

describe('capabilities.testMode', () => {
  it('Stripe: test for sk_test_ and rk_test_ keys, live for live keys', () => {
    const mode = (apiKey: string) => new StripeProvider({ apiKey, logger: quiet }).capabilities.testMode;
    expect(mode('sk_test_123')).toBe(true);
    expect(mode('rk_test_123')).toBe(true);
    expect(mode('sk_live_123')).toBe(false);
    expect(mode('rk_live_123')).toBe(false);
    expect(String(new StripeProvider({ apiKey: 'sk_live_123', logger: quiet }))).toBe(
      "StripeProvider { id: 'stripe', mode: 'live' }",
    );
  });

  it('Walleot: live only for a live key at the production API, unless said otherwise', () => {
    const mode = (options: { apiKey: string; baseUrl?: string; testMode?: boolean }) =>
      new WalleotProvider({ ...options, logger: quiet }).capabilities.testMode;
    expect(mode({ apiKey: 'sk_live_1' })).toBe(false);
    expect(mode({ apiKey: 'sk_live_1', baseUrl: 'https://api.walleot.com/v1/' })).toBe(false);
    expect(mode({ apiKey: 'sk_test_1' })).toBe(true);
    expect(mode({ apiKey: 'sk_live_1', baseUrl: 'http://127.0.0.1:1/v1' })).toBe(true);
    expect(mode({ apiKey: 'sk_live_1', baseUrl: 'http://127.0.0.1:1/v1', testMode: false })).toBe(false);
    expect(mode({ apiKey: 'sk_live_1', testMode: true })).toBe(true);
  });

  it('sandbox-built providers are in test mode', () => {
    const { walleot, stripe } = sandbox.providers({ logger: quiet });
    expect(walleot.capabilities.testMode).toBe(true);
    expect(stripe.capabilities.testMode).toBe(true);
  });
});

describe('issue 11 item 9: a paymentTtlMs a provider cannot honour is refused at construction', () => {
  const build = (paymentTtlMs: number | undefined, providers: 'both' | 'walleot' = 'both') => {
    const { walleot, stripe } = sandbox.providers({ logger: quiet });
    return new PayRouter(new McpServer({ name: 's', version: '1' }), {
      providers: providers === 'both' ? [walleot, stripe] : [walleot],
      logger: quiet,
      ...(paymentTtlMs === undefined ? {} : { paymentTtlMs }),
    });
  };

  it('Stripe publishes its window: 31 min to 23 h 59 min', () => {
    expect(sandbox.providers({ logger: quiet }).stripe.capabilities.expiryWindowMs).toEqual({
      min: 31 * 60_000,
      max: (24 * 60 - 1) * 60_000,
    });
    expect(sandbox.providers({ logger: quiet }).walleot.capabilities.expiryWindowMs).toBeUndefined();
  });

  it('under 31 minutes or over 24 hours with Stripe configured: a ConfigError naming the provider and the range', async () => {
    for (const ttl of [20 * 60_000, 31 * 60_000 - 1, 25 * 3600_000]) {
      let caught: unknown;
      try {
        await build(ttl).close();
      } catch (error) {
        caught = error;
      }
      expect(caught, `paymentTtlMs ${ttl}`).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).toContain('"stripe"');
      expect((caught as Error).message).toContain('31 min to 1439 min');
    }
    // The mapping form is checked the same way.
    expect(
      () =>
        new PayRouter(new McpServer({ name: 's', version: '1' }), {
          providers: { stripe: { apiKey: 'sk_test_1' } },
          logger: quiet,
          paymentTtlMs: 10 * 60_000,
        }),
    ).toThrow(/"stripe"/);
  });

  it('the default, the window edges, and any lifetime without Stripe are accepted', async () => {
    for (const router of [
      build(undefined),
      build(31 * 60_000),
      build(1439 * 60_000),
      build(5 * 60_000, 'walleot'),
    ]) {
      await router.close();
    }
  });
});
