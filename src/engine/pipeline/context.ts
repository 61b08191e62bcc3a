import type { IntentRecord } from '../../core/intent/record.js';
import type { ClientSupport, EligibleProvider } from '../../core/route/route.js';
import type { CallExtra } from '../paid-tool.js';

/** The payer's answer to "how would you like to pay?". */
export type Choice =
  | { kind: 'chosen'; providerId: string; remember: boolean }
  /** They said no. */
  | { kind: 'declined' }
  /** They dismissed the question. */
  | { kind: 'cancelled' }
  /** No answer in this call (none can be asked, nobody answered in time, the client went away). */
  | { kind: 'deferred' }
  /** The question goes out in this call's result; the client's retry carries the answer (protocol 2026-07-28). */
  | { kind: 'input_required' };

/** What became of handing the payer the payment link. */
export type Delivery = 'accepted' | 'declined' | 'cancelled' | 'deferred' | 'input_required';

/** The link the payer opens to pay one intent, and what it is for. */
export interface PaymentLink {
  url: string;
  /** The method's human name, e.g. "Card (Stripe Checkout)". */
  label: string;
  /** Names this delivery, so a completion notice can refer to it. */
  deliveryId: string;
}

/**
 * How the pipeline talks to the person: live elicitation, result-only (the payment-required
 * result and confirm_payment), or input-required results with protocol 2026-07-28. The protocol
 * layer picks one per call; no step knows which.
 */
export interface Interaction {
  chooseMethod(
    ctx: CallContext,
    intent: IntentRecord,
    eligible: readonly EligibleProvider[],
  ): Promise<Choice>;
  deliver(ctx: CallContext, intent: IntentRecord, link: PaymentLink): Promise<Delivery>;
  /** The payment of a delivered link completed: tell the client it may close what it opened. */
  completed?(ctx: CallContext, link: PaymentLink): Promise<void>;
}

/** A machine credential as the protocol layer read it: its protocol and the payload as sent. */
export interface PresentedCredential {
  /** Matches a provider's `capabilities.credential` (`'x402'`). */
  scheme: string;
  payload: unknown;
}

/** One tool call as it travels through the pipeline. */
export interface CallContext {
  /** Who pays: see the subject rule. Anonymous subjects are sessions or connections. */
  subject: string;
  anonymous: boolean;
  client: ClientSupport;
  interaction: Interaction;
  /** When the call must have answered (ms since epoch): every wait is cut to fit. */
  deadline: number;
  signal: AbortSignal;
  /** The protocol's own per-call context, handed to the tool's handler. */
  extra: CallExtra;
  /**
   * A machine credential sent with this call (x402: `_meta["x402/payment"]`), unverified: the
   * pipeline verifies it against the intent's binding before anything runs.
   */
  credential?: PresentedCredential;
  /** A short progress note for clients that asked for progress. */
  progress(message: string): void;
}

/** A step's timeout cut to what is left of the call's budget (at least 1 ms). */
export function budget(ctx: CallContext, stepMs: number): number {
  return Math.max(1, Math.min(stepMs, ctx.deadline - Date.now()));
}
