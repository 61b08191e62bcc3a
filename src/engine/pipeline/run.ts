import type { IntentRecord } from '../../core/intent/record.js';
import { liveAttempt } from '../../core/intent/transitions.js';
import { closeOtherAttempts } from '../attempts.js';
import type { PaidTool } from '../paid-tool.js';
import { type RunClaim, runOnce } from '../run-once.js';
import type { RouterCore } from '../runtime.js';
import type { CallContext } from './context.js';
import { settleCredential } from './credential.js';
import type { Outcome } from './outcome.js';

/**
 * run once: a paid intent runs its bound tool exactly once. `args` are the protocol's own parsed
 * arguments of this very call (handed over unchanged); without them (a deferred run) the stored
 * wire form is parsed once.
 */
export async function runPaid(
  rt: RouterCore,
  tool: PaidTool,
  intent: IntentRecord,
  ctx: CallContext,
  args?: Record<string, unknown>,
  /** A claim the write that made the payment paid carried (`paidClaim`): the run starts from it. */
  claim?: RunClaim,
): Promise<Outcome> {
  await closeOtherAttempts(rt, intent);
  // A verified credential is settled with the call that carries it: without it nothing runs here.
  if (intent.status === 'authorized' && ctx.credential === undefined)
    return { kind: 'payment_required', intent, reason: 'not_yet' };
  const outcome = await runOnce(rt, tool, intent, ctx.extra, args, claim);
  switch (outcome.kind) {
    case 'result': {
      if (outcome.intent.status !== 'authorized') {
        const receipt = liveAttempt(outcome.intent)?.settlement?.receipt;
        return {
          kind: 'ran',
          intent: outcome.intent,
          result: outcome.result,
          ...(receipt ? { receipt } : {}),
        };
      }
      // Paid by a machine credential: settled after the successful run, and only then delivered.
      const settled = await settleCredential(rt, outcome.intent, ctx);
      if (!settled.ok)
        return {
          kind: 'payment_required',
          intent: settled.intent,
          reason: 'settlement_failed',
          detail: settled.reason,
        };
      return {
        kind: 'ran',
        intent: settled.intent,
        result: outcome.result,
        ...(settled.receipt ? { receipt: settled.receipt } : {}),
      };
    }
    case 'tool_failed':
      return {
        kind: 'tool_failed',
        intent: outcome.intent,
        message: outcome.message,
        refunded: outcome.refunded,
      };
    case 'not_paid':
      return describe(outcome.intent);
    case 'refunded':
      return { kind: 'ended', intent: outcome.intent, status: 'refunded' };
    case 'refunding':
      return {
        kind: 'tool_failed',
        intent: outcome.intent,
        message: outcome.intent.runErrors.at(-1) ?? 'the tool failed',
        refunded: false,
        refundUnderWay: true,
      };
    case 'invalid_arguments':
      return { kind: 'refused', reason: 'stored_call_invalid', detail: outcome.message };
    case 'mismatch':
      return { kind: 'refused', reason: 'binding_changed' };
    case 'gone':
      return { kind: 'refused', reason: 'unknown_payment' };
  }
}

/** What an intent that cannot run now amounts to. */
export function describe(intent: IntentRecord): Outcome {
  switch (intent.status) {
    case 'pending':
    case 'authorized':
      return { kind: 'payment_required', intent, reason: 'not_yet' };
    case 'requires_method':
      return { kind: 'payment_required', intent, reason: 'requires_method' };
    case 'unknown':
      return { kind: 'payment_required', intent, reason: 'unknown' };
    default:
      return { kind: 'ended', intent, status: intent.status };
  }
}
