import { describe, expect, it } from 'vitest';
import type { EligibleProvider } from '../../core/route/route.js';
import { choiceSchema, methodTitle } from './choice-schema.js';

const offer = (providerId: string, label: string, instant: boolean) =>
  ({ providerId, label, instant }) as unknown as EligibleProvider;

describe('the method-choice form', () => {
  const walleot = offer('walleot', 'Walleot credits', true);
  const stripe = offer('stripe', 'Card (Stripe Checkout)', false);

  it('offers the eligible methods in order, the first as default, with the remember box when asked', () => {
    expect(choiceSchema([walleot, stripe], true)).toEqual({
      type: 'object',
      properties: {
        method: {
          type: 'string',
          title: 'Payment method',
          oneOf: [
            { const: 'walleot', title: 'Walleot credits: instant' },
            { const: 'stripe', title: 'Card (Stripe Checkout): opens a checkout page' },
          ],
          default: 'walleot',
        },
        remember: { type: 'boolean', title: 'Use this method next time', default: false },
      },
      required: ['method'],
    });
    expect(choiceSchema([stripe], false).properties.remember).toBeUndefined();
    expect(methodTitle(stripe)).toBe('Card (Stripe Checkout): opens a checkout page');
  });

  it('hands out one frozen object per distinct offer, so SDKs and clients see the same schema every call', () => {
    const first = choiceSchema([walleot, stripe], true);
    expect(choiceSchema([offer('walleot', 'Walleot credits', true), stripe], true)).toBe(first);
    expect(choiceSchema([walleot, stripe], false)).not.toBe(first);
    expect(choiceSchema([stripe, walleot], true)).not.toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.properties.method.oneOf[0])).toBe(true);
  });
});
