// Options are one strict schema: a misspelt or foreign option is an error naming the nearest valid one.
import { describe, expect, it } from 'vitest';
import { ConfigError, PayRouter, type PayRouterOptions } from '../src/index.js';
import { FakeProvider } from './support/fake-provider.js';

const make = (options: Record<string, unknown>) =>
  new PayRouter({ providers: [new FakeProvider()], ...options } as PayRouterOptions);

describe('PayRouter options', () => {
  it('names the nearest valid option for a typo, and PayMCP names for ours', () => {
    expect(() => make({ timeout: { choiceMs: 1 } })).toThrow(
      /unknown option "timeout"; did you mean "timeouts"\?/,
    );
    expect(() => make({ mode: 'two_step' })).toThrow(/unknown option "mode"; did you mean "flow"\?/);
    expect(() => make({ timeouts: { choiceMS: 5 } })).toThrow(
      /"timeouts.choiceMS"; did you mean "timeouts.choiceMs"\?/,
    );
    expect(() => make({ publicURL: 'https://x.example' })).toThrow(/did you mean "publicUrl"/);
    expect(() => make({ zzzzzzzz: 1 })).toThrow(ConfigError);
  });

  it('refuses bad values with the option path', () => {
    expect(() => make({ flow: 'sometimes' })).toThrow(/PayRouter options: flow/);
    expect(() => make({ timeouts: { choiceMs: -1 } })).toThrow(/timeouts\.choiceMs/);
    expect(() => make({ hooks: { onPaid: 'yes' } })).toThrow(/hooks\.onPaid must be a function/);
  });

  it('accepts every documented option', async () => {
    const router = make({
      flow: 'two_step',
      publicUrl: 'https://pay.example/base/',
      routing: { policy: 'lowest_fee', rememberChoiceMs: 1000 },
      timeouts: { choiceMs: 1000, paymentWaitMs: 0, callBudgetMs: 5000 },
      paymentTtlMs: 40 * 60_000,
      resultTtlMs: 60_000,
      leaseMs: 60_000,
      onToolError: 'refund',
      maxArgumentBytes: 1024,
      confirmation: { pendingTtlMs: 10, poll: { initialMs: 10, factor: 2, maxMs: 100 }, budgetShare: 0.5 },
      hooks: { onPaid: () => {} },
      subject: () => 'someone',
      priceInDescription: false,
    });
    await router.close();
  });
});
