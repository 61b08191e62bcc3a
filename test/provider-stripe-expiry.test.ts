import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseMoney } from '../src/core/money/index.js';
import { StripeProvider } from '../src/providers.js';
import { type StripeSandbox, startStripeSandbox } from '../src/sandbox/stripe.js';

/**
 * Issue 11 item 9: the Stripe `expires_at` comes from the stored plan and is never recomputed
 * from the clock at send time, so a create retried much later under the same idempotency key
 * sends byte-identical parameters and Stripe replays it. Real stripe SDK, stand-in over HTTP;
 * the process clock (which the stand-in's clock follows) is moved, not the code's timers.
 */

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
let sandbox: StripeSandbox;
beforeAll(async () => {
  sandbox = await startStripeSandbox();
});
afterAll(async () => {
  await sandbox?.close();
});
afterEach(() => {
  vi.useRealTimers();
});

const createBodies = () =>
  sandbox.requests.entries.filter((r) => r.method === 'POST' && r.path === '/v1/checkout/sessions');

describe('Stripe expires_at from the stored plan', () => {
  for (const [ttlMinutes, laterMinutes] of [
    [60, 30],
    [31, 29],
    [24 * 60 - 1, 23 * 60],
  ] as const) {
    it(`a ${ttlMinutes}-minute payment re-sent ${laterMinutes} minutes later sends the same parameters and replays`, async () => {
      sandbox.reset();
      const provider = new StripeProvider({
        apiKey: sandbox.apiKey,
        stripe: { ...sandbox.sdkOptions, maxNetworkRetries: 0, timeout: 5000 },
        logger: quiet,
      });
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
      const plannedAt = Date.now();
      const charge = {
        money: parseMoney('25.00', 'USD'),
        description: 'Tool call: report',
        intentId: 'pay_plan',
      };
      const options = {
        idempotencyKey: `payrouter_pay_plan_1_stripe_${ttlMinutes}`,
        metadata: { tool: 'report' },
        expiresAt: plannedAt + ttlMinutes * 60_000,
      };
      const first = await provider.createPayment(charge, options);

      vi.setSystemTime(plannedAt + laterMinutes * 60_000);
      const retried = await provider.createPayment(charge, options);

      expect(retried.paymentId).toBe(first.paymentId);
      expect(retried.expiresAt).toBe(first.expiresAt);
      const [a, b] = createBodies();
      expect(b?.body).toBe(a?.body);
      expect(b?.headers['idempotency-key']).toBe(a?.headers['idempotency-key']);
      expect(a?.body).toContain(`expires_at=${Math.floor(options.expiresAt / 1000)}`);
      expect(sandbox.listSessions()).toHaveLength(1);
    });
  }
});
