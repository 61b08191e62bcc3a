import { looksLikeIntentId } from '../../core/ids.js';
import type { IntentRecord } from '../../core/intent/record.js';
import { isFinalStatus } from '../../core/intent/status.js';
import { liveAttempt, sameBinding } from '../../core/intent/transitions.js';
import { type ClientSupport, type RouteDecision, routeCharge } from '../../core/route/route.js';
import { selectMethod } from '../attempts.js';
import type { Confirmation } from '../confirmation/index.js';
import { expectedBinding, type PaidTool, priceForCall } from '../paid-tool.js';
import { paidClaim } from '../run-once.js';
import type { RouterCore } from '../runtime.js';
import { collect, deliver, providerFailure } from './collect.js';
import { budget, type CallContext } from './context.js';
import { redeemCredential } from './credential.js';
import { openIntent, priceCall } from './open.js';
import type { Outcome } from './outcome.js';
import { describe, runPaid } from './run.js';
import { StartGate } from './start-gate.js';

/**
 * The paid call as a pipeline of steps, each returning the next step's input or an Outcome:
 * price → open → route → choose → attempt → deliver → await → run once.
 * It knows neither MCP nor HTTP: the protocol layer supplies the CallContext (with its
 * Interaction) and turns the Outcome into a result.
 */
/** How long confirm_payment waits for a payment that is not complete yet before saying so. */
const CONFIRM_GRACE_MS = 2_000;

/** Shared by every call cancelled while queued: frozen, so no later step can change it for the others. */
const CANCELED: Outcome = Object.freeze({ kind: 'refused', reason: 'canceled_call' });

export class PaidCallPipeline {
  /** Per binding key: the last "resume or open" decision in progress in this process. */
  readonly #openings = new Map<string, Promise<void>>();

  /** Spreads a burst of calls over turns of the event loop. */
  readonly #gate = new StartGate();
  readonly #leave = () => this.#gate.leave();

  constructor(private readonly rt: RouterCore) {}

  /** A call of a priced tool with the protocol's parsed arguments. */
  call(tool: PaidTool, args: Record<string, unknown>, ctx: CallContext): Promise<Outcome> {
    return this.#gated(ctx, () => this.#call(tool, args, ctx));
  }

  #gated(ctx: CallContext, step: () => Promise<Outcome>): Promise<Outcome> {
    const turn = this.#gate.enter();
    // A call cancelled while it waited for its turn does nothing: no payment, no provider request.
    const outcome = turn === undefined ? step() : turn.then(() => (ctx.signal.aborted ? CANCELED : step()));
    // Not awaited here: a call waiting for its payment holds no extra frame for it.
    outcome.then(this.#leave, this.#leave);
    return outcome;
  }

  async #call(tool: PaidTool, args: Record<string, unknown>, ctx: CallContext): Promise<Outcome> {
    const priced = await priceCall(this.rt, tool, args, ctx);
    if ('kind' in priced) return priced;
    const opened = await openIntent(this.rt, this.#openings, tool, args, priced, ctx);
    // A machine credential came with the call: it pays this intent, or nothing runs.
    if (
      ctx.credential !== undefined &&
      (opened.kind === 'run' || opened.kind === 'deliver' || opened.kind === 'collect')
    )
      return redeemCredential(this.rt, tool, opened.intent, ctx, ctx.credential, args);
    switch (opened.kind) {
      case 'run':
        if (opened.claim === undefined) return runPaid(this.rt, tool, opened.intent, ctx, args);
        try {
          return await runPaid(this.rt, tool, opened.intent, ctx, args, opened.claim);
        } finally {
          await opened.claim.dispose();
        }
      case 'deliver':
        return deliver(this.rt, tool, opened.intent, ctx, true, args);
      case 'collect': {
        const collected = collect(this.rt, tool, opened.intent, ctx, opened.decision, args);
        const { repeatOf } = opened;
        // Handed on, not awaited, unless there is something to add: a waiting call holds one frame less.
        if (repeatOf === undefined) return collected;
        const outcome = await collected;
        return outcome.kind === 'payment_required' ? { ...outcome, repeatOf } : outcome;
      }
      default:
        return opened;
    }
  }

  /**
   * confirm_payment: enter the pipeline at `open` with an intent id. The payment runs only its own
   * bound call, checked against the tool as it is now; an anonymous payer's payment is redeemable
   * by whoever presents its id, an authenticated payer's only by that payer.
   */
  confirm(
    tools: ReadonlyMap<string, PaidTool>,
    paymentId: string,
    method: string | undefined,
    ctx: CallContext,
  ): Promise<Outcome> {
    return this.#gated(ctx, () => this.#confirm(tools, paymentId, method, ctx));
  }

  async #confirm(
    tools: ReadonlyMap<string, PaidTool>,
    paymentId: string,
    method: string | undefined,
    ctx: CallContext,
  ): Promise<Outcome> {
    // Junk never reaches the store; a well-formed id is 144 random bits, so guessing is hopeless.
    const intent = looksLikeIntentId(paymentId) ? await this.rt.store.get(paymentId) : undefined;
    // The same answer for "no such payment" and "someone else's payment": ids reveal nothing.
    if (!intent || !mayRedeem(intent, ctx))
      return { kind: 'refused', reason: 'unknown_payment', detail: paymentId };
    const tool = tools.get(intent.binding.tool);
    if (!tool) return { kind: 'refused', reason: 'tool_unavailable', detail: intent.binding.tool };
    if (!sameBinding(expectedBinding(tool, intent), intent.binding))
      return { kind: 'refused', reason: 'binding_changed' };

    if (intent.status === 'paid') return runPaid(this.rt, tool, intent, ctx);
    if (isFinalStatus(intent.status)) return describe(intent);

    if (method !== undefined) {
      if (!intent.eligible.includes(method))
        return {
          kind: 'refused',
          reason: 'method_not_eligible',
          detail: `"${method}" cannot take this payment. Choose one of: ${intent.eligible.join(', ')}.`,
        };
      if (liveAttempt(intent)?.providerId !== method) {
        let switched: IntentRecord;
        try {
          switched = await selectMethod(this.rt, intent, method);
        } catch (error) {
          return providerFailure(this.rt, intent, error);
        }
        if (switched.status === 'paid') return runPaid(this.rt, tool, switched, ctx);
        if (isFinalStatus(switched.status)) return describe(switched);
        return deliver(this.rt, tool, switched, ctx, false);
      }
    }
    if (!liveAttempt(intent)) return collect(this.rt, tool, intent, ctx);

    // The payer says they paid: ask the provider now, and answer at once either way. If this read
    // finds it paid, the run is claimed in the same write (no write of its own to start it).
    const claim = paidClaim(this.rt, tool, intent, ctx.extra);
    let checked: Confirmation | undefined;
    try {
      checked = await this.rt.confirmation.check(intent.id, { fresh: true, known: intent, claim });
      if (claim.claimed !== undefined)
        return await runPaid(this.rt, tool, claim.claimed.intent, ctx, undefined, claim);
    } finally {
      await claim.dispose();
    }
    const current = checked?.intent ?? intent;
    if (current.status === 'paid') return runPaid(this.rt, tool, current, ctx);
    if (isFinalStatus(current.status)) return describe(current);
    if (checked?.status === 'unknown')
      return { kind: 'payment_required', intent: current, reason: 'unknown' };
    // Not paid yet: a moment for a webhook or return page already on its way, then a prompt answer.
    const waited = await this.rt.confirmation.waitFor(intent.id, {
      timeoutMs: budget(ctx, Math.min(this.rt.settings.paymentWaitMs, CONFIRM_GRACE_MS)),
      signal: ctx.signal,
    });
    const latest = waited?.intent ?? current;
    if (latest.status === 'paid') return runPaid(this.rt, tool, latest, ctx);
    if (isFinalStatus(latest.status)) return describe(latest);
    return { kind: 'payment_required', intent: latest, reason: 'not_yet' };
  }

  /** The routing decision for a call, without side effects. */
  async explain(
    tool: PaidTool,
    args: Record<string, unknown>,
    subject: string | undefined,
    client: ClientSupport,
  ): Promise<RouteDecision> {
    const money = await priceForCall(tool, args);
    const remembered = subject === undefined ? undefined : await this.rt.store.getChoice(subject);
    return routeCharge({
      charge: money,
      providers: this.rt.providers,
      toolProviders: tool.providers,
      remembered,
      client,
      policy: this.rt.settings.policy,
    });
  }
}

/** An anonymous payer's payment is a bearer capability; an authenticated payer's stays theirs. */
function mayRedeem(intent: IntentRecord, ctx: CallContext): boolean {
  if (intent.binding.subject === ctx.subject) return true;
  return isAnonymousSubject(intent.binding.subject);
}

/**
 * Sessions and connections; and `request:`, a stateless request's payer, known only by the payment
 * it opens (protocol 2026-07-28 without auth: the next request is a stranger unless it names the payment).
 */
export function isAnonymousSubject(subject: string): boolean {
  return (
    subject.startsWith('session:') || subject.startsWith('connection:') || subject.startsWith('request:')
  );
}
