import {
  type InputRequest,
  type InputResponses,
  inputRequired,
  inputResponse,
} from '@modelcontextprotocol/server';
import type { IntentRecord } from '../core/intent/record.js';
import type { ClientSupport, EligibleProvider } from '../core/route/route.js';
import type { Choice, Delivery, Interaction, PaymentLink } from '../engine/pipeline/context.js';
import { choiceSchema } from '../mcp/interaction/choice-schema.js';
import { choiceQuestion, urlConsentMessage } from '../mcp/messages.js';

/** The keys of payrouter's input requests (unique within one request, as the protocol asks). */
export const CHOICE_KEY = 'payrouter_method';
export const PAYMENT_KEY = 'payrouter_payment';

/** The answers a retry carries, tied to the round (intent, and delivery for the link) they answer. */
export interface RoundAnswers {
  intentId: string;
  choice?: Choice;
  /** The delivery the link answer is for, and the answer. */
  delivery?: { deliveryId: string; answer: Exclude<Delivery, 'deferred' | 'input_required'> };
}

/**
 * Input-required results (protocol 2026-07-28): the method choice goes out as a form input
 * request, the payment link as a URL input request; the retry brings the answers, which count only
 * for the round they answer. A kind the client did not declare is never asked: the pipeline then
 * ends in the payment-required result and confirm_payment.
 */
export function inputRequiredInteraction(
  client: ClientSupport,
  answers: RoundAnswers | undefined,
  remember: boolean,
): Interaction {
  return {
    async chooseMethod(_ctx, intent, eligible): Promise<Choice> {
      if (!client.form) return { kind: 'deferred' };
      const choice = answers?.intentId === intent.id ? answers.choice : undefined;
      if (choice === undefined) return { kind: 'input_required' };
      if (choice.kind !== 'chosen') return choice;
      // An accepted answer naming no offered method chose nothing: ask again.
      if (!eligible.some((e) => e.providerId === choice.providerId)) return { kind: 'input_required' };
      return { ...choice, remember: remember && choice.remember };
    },
    async deliver(_ctx, intent, link): Promise<Delivery> {
      if (!client.url || link.url === '') return 'deferred';
      const given = answers?.intentId === intent.id ? answers.delivery : undefined;
      if (given === undefined || given.deliveryId !== link.deliveryId) return 'input_required';
      return given.answer;
    },
  };
}

/** The answer to the method question in a retry's inputResponses. Undefined: not answered (ask again). */
export function readChoice(
  responses: InputResponses | Record<string, unknown> | undefined,
): Choice | undefined {
  const view = inputResponse(responses, CHOICE_KEY);
  if (view.kind !== 'elicit') return undefined;
  if (view.action === 'decline') return { kind: 'declined' };
  if (view.action === 'cancel') return { kind: 'cancelled' };
  const method = view.content?.['method'];
  if (typeof method !== 'string' || method.length === 0 || method.length > 64) return undefined;
  return { kind: 'chosen', providerId: method, remember: view.content?.['remember'] === true };
}

/** The answer to the payment link in a retry's inputResponses. */
export function readDelivery(
  responses: InputResponses | Record<string, unknown> | undefined,
): Exclude<Delivery, 'deferred' | 'input_required'> | undefined {
  const view = inputResponse(responses, PAYMENT_KEY);
  if (view.kind !== 'elicit') return undefined;
  return view.action === 'accept' ? 'accepted' : view.action === 'decline' ? 'declined' : 'cancelled';
}

/** The input requests of an input-required outcome. */
export function inputRequestsFor(
  intent: IntentRecord,
  ask: { kind: 'choose'; eligible: readonly EligibleProvider[] } | { kind: 'deliver'; link: PaymentLink },
  remember: boolean,
): Record<string, InputRequest> {
  if (ask.kind === 'choose')
    return {
      [CHOICE_KEY]: inputRequired.elicit({
        mode: 'form',
        message: choiceQuestion(intent),
        requestedSchema: choiceSchema(ask.eligible, remember),
      }),
    };
  return {
    [PAYMENT_KEY]: inputRequired.elicitUrl({
      message: urlConsentMessage(intent, ask.link.label),
      url: ask.link.url,
    }),
  };
}
