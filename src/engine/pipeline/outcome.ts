import type { IntentRecord, ToolResult } from '../../core/intent/record.js';
import type { PaymentStatus } from '../../core/intent/status.js';
import type { EligibleProvider } from '../../core/route/route.js';
import type { LimitHit } from '../limits/limits.js';
import type { PaymentLink } from './context.js';

/** Why a call was refused before any payment existed, or without touching one. Nothing was charged. */
export type RefusalReason =
  | 'arguments_too_large'
  | 'arguments_invalid'
  /** After payment: the stored call cannot run as it was paid for (schema or dynamic price changed). */
  | 'stored_call_invalid'
  | 'price_failed'
  | 'no_method'
  | 'policy'
  | 'too_many_open'
  | 'unknown_payment'
  | 'tool_unavailable'
  | 'binding_changed'
  | 'method_not_eligible'
  | 'canceled_call';

/** Why a payment is still required at the end of this call. */
export type PendingReason =
  /** A link was just made: pay, then confirm. */
  | 'new'
  /** The same call again while its payment is open. */
  | 'resumed'
  /** No method chosen yet: choose one (confirm_payment with method, or the hosted page). */
  | 'requires_method'
  /** confirm_payment before the payment completed. */
  | 'not_yet'
  /** The in-call wait ran out. */
  | 'timed_out'
  /** The provider could not be reached to confirm. */
  | 'unknown'
  /** The provider failed to create the payment. */
  | 'provider_failed'
  /** A machine credential came with the call and was not accepted (`detail` says why); nothing ran. */
  | 'credential_rejected'
  /** The tool ran for a verified credential, but its settlement failed (`detail`): the result is withheld. */
  | 'settlement_failed';

/**
 * How a paid call ended. Steps return these; only the protocol layer turns them into results,
 * so every message and result shape is decided in one place.
 */
export type Outcome =
  | { kind: 'refused'; reason: RefusalReason; detail?: string }
  /** Over a spend cap or call quota: not "payment required"; nothing was created or charged. */
  | { kind: 'limited'; hit: LimitHit }
  /** `repeatOf`: the same call was paid and answered before (that payment's id); this is a new purchase. */
  | {
      kind: 'payment_required';
      intent: IntentRecord;
      reason: PendingReason;
      detail?: string;
      repeatOf?: string;
    }
  /** The payer said no (declined) or dismissed (cancelled); `linkOpen` when the link cannot be withdrawn. */
  | { kind: 'stopped'; intent: IntentRecord; by: 'declined' | 'cancelled'; linkOpen: boolean }
  /** The payment ended without being paid (failed, canceled, expired, refunded). */
  | { kind: 'ended'; intent: IntentRecord; status: PaymentStatus }
  /** The payer must answer first: the question goes out in the result, the retry brings the answer. */
  | { kind: 'input_required'; intent: IntentRecord; ask: InputAsk }
  /** `receipt`: the settlement of the machine credential that paid for the run (x402's SettleResponse). */
  | { kind: 'ran'; intent: IntentRecord; result: ToolResult; receipt?: Record<string, unknown> }
  /** `refundUnderWay`: the refund is decided but not made yet (it is being made, here or by a sweep). */
  | {
      kind: 'tool_failed';
      intent: IntentRecord;
      message: string;
      refunded: boolean;
      refundUnderWay?: boolean;
    };

/** What an input-required outcome asks: the method choice, or consent to open the payment link. */
export type InputAsk =
  | { kind: 'choose'; eligible: readonly EligibleProvider[] }
  | { kind: 'deliver'; link: PaymentLink };
