import { MoneyError } from '../../core/errors.js';
import { newIntentId, subjectPool } from '../../core/ids.js';
import { type Binding, bindingKey, type IntentRecord } from '../../core/intent/record.js';
import { isFinalStatus } from '../../core/intent/status.js';
import { isResumable, liveAttempt, sameBinding } from '../../core/intent/transitions.js';
import type { Money } from '../../core/money/money.js';
import { type RouteDecision, routeCharge } from '../../core/route/route.js';
import { planAttempt } from '../attempts.js';
import { insertIntent } from '../intents.js';
import type { LimitHit } from '../limits/limits.js';
import { type PaidTool, priceForCall } from '../paid-tool.js';
import { paidClaim, type RunClaim } from '../run-once.js';
import type { RouterCore } from '../runtime.js';
import { describeRoute } from '../telemetry/steps.js';
import type { CallContext } from './context.js';
import type { Outcome } from './outcome.js';

/** Rounds of "someone else opened this binding first" before inserting regardless (never hit in practice). */
const MAX_OPEN_ROUNDS = 5;

/** Where `open` leaves a call: an intent to run, to resume delivering, or to collect for. */
export type Opened =
  /** `claim`: the run was claimed in the write that made it paid (runPaid starts from it). */
  | { kind: 'run'; intent: IntentRecord; claim?: RunClaim }
  | { kind: 'deliver'; intent: IntentRecord }
  | { kind: 'collect'; intent: IntentRecord; decision?: RouteDecision; repeatOf?: string };

/** The binding of one call: what its payment will be for. */
export interface PricedCall {
  binding: Binding;
  /** Computed once per call; every lookup reuses it. */
  key: string;
  money: Money;
  /** The arguments in their replayable wire form, as canonical JSON. */
  wireJson: string;
}

/** price: the call's Money, from a fixed price or the tool's price function, never by float. */
export async function priceCall(
  rt: RouterCore,
  tool: PaidTool,
  args: Record<string, unknown>,
  ctx: CallContext,
): Promise<PricedCall | Outcome> {
  const wire = tool.wireForm(args);
  if (!wire.ok) return { kind: 'refused', reason: 'arguments_invalid', detail: wire.message };
  if (Buffer.byteLength(wire.json) > rt.settings.maxArgumentBytes)
    return { kind: 'refused', reason: 'arguments_too_large' };
  let money: Money;
  try {
    money = await priceForCall(tool, args);
  } catch (error) {
    rt.logger.error('dynamic price failed', { tool: tool.name, error });
    const detail = error instanceof MoneyError ? error.message : 'the price could not be computed';
    return { kind: 'refused', reason: 'price_failed', detail };
  }
  // Frozen now, as the store keeps it: its key is computed once, here, and remembered.
  const binding: Binding = Object.freeze({
    tool: tool.name,
    argsHash: wire.hash,
    amount: money.minor,
    currency: money.currency,
    subject: ctx.subject,
  });
  return { binding, key: bindingKey(binding), money, wireJson: wire.json };
}

/**
 * open: resume this payer's open intent for the identical call, or insert a new one. A retry never
 * creates a second payment: identical calls arriving together are serialised per binding in this
 * process, and the insert is atomic across instances.
 */
export function openIntent(
  rt: RouterCore,
  openings: Map<string, Promise<void>>,
  tool: PaidTool,
  args: Record<string, unknown>,
  call: PricedCall,
  ctx: CallContext,
): Promise<Opened | Outcome> {
  return serialised(openings, call.key, () => openOrResume(rt, tool, args, call, ctx));
}

async function openOrResume(
  rt: RouterCore,
  tool: PaidTool,
  args: Record<string, unknown>,
  call: PricedCall,
  ctx: CallContext,
): Promise<Opened | Outcome> {
  let decision: RouteDecision | undefined;
  let repeatOf: string | undefined;
  for (let round = 0; ; round++) {
    const existing = await rt.store.findByBinding(call.key);
    const same = existing !== undefined && sameBinding(existing.binding, call.binding);
    if (same && isResumable(existing, Date.now())) {
      rt.logger.debug('resuming payment', { intentId: existing.id, status: existing.status });
      if (existing.status === 'paid' || existing.status === 'authorized')
        return { kind: 'run', intent: existing };
      if (!liveAttempt(existing)) return { kind: 'collect', intent: existing };
      // A retry whose read finds the payment paid claims its run in that write (not with a credential:
      // that call settles before it runs).
      const claim = ctx.credential === undefined ? paidClaim(rt, tool, existing, ctx.extra, args) : undefined;
      const checked = await rt.confirmation
        .check(existing.id, { fresh: true, claim })
        .catch(async (error: unknown) => {
          await claim?.dispose();
          throw error;
        });
      if (claim?.claimed !== undefined) return { kind: 'run', intent: claim.claimed.intent, claim };
      const current = checked?.intent ?? existing;
      if (current.status === 'paid') return { kind: 'run', intent: current };
      if (!isFinalStatus(current.status)) return { kind: 'deliver', intent: current };
      // Ended unpaid: this call starts a new payment.
    } else if (same && existing.run === 'done' && existing.resultDelivered === true) {
      // The same call was paid and answered before: this is a new purchase, and the payer is told so.
      repeatOf = existing.id;
    }

    const limits = rt.limits?.applies(tool) ? rt.limits : undefined;
    if (limits?.hasFree(tool)) {
      // The free allowance goes first: no route, no charge, no provider.
      const free = newFreeIntent(rt, tool, call);
      const admitted = await limits.reserveFree(tool, ctx.subject, free.id, limits.clock());
      if (admitted?.kind === 'limited') return limitedOutcome(rt, admitted.hit);
      if (admitted !== undefined) {
        const owner = round < MAX_OPEN_ROUNDS ? { bindingOwner: existing?.id ?? null } : {};
        const inserted = await insertIntent(rt.store, free, owner);
        if (inserted.kind === 'inserted') {
          rt.logger.debug('free call', { intentId: free.id, tool: tool.name });
          return { kind: 'run', intent: free };
        }
        await limits.release(ctx.subject, free.id);
        if (inserted.kind === 'taken') continue;
        return {
          kind: 'refused',
          reason: 'too_many_open',
          detail: 'This server cannot take more calls right now; try again later.',
        };
      }
    }

    if (decision === undefined) {
      const remembered = await rt.store.getChoice(ctx.subject);
      const route = () =>
        routeCharge({
          charge: call.money,
          providers: rt.providers,
          toolProviders: tool.providers,
          remembered,
          client: ctx.client,
          policy: rt.settings.policy,
        });
      const traced = rt.telemetry?.callOf(ctx.extra);
      decision = traced ? traced.stepSync('payrouter.route', route, describeRoute) : route();
      if (decision.action.kind === 'none')
        return { kind: 'refused', reason: 'no_method', detail: decision.action.message };
      const refusal = await beforeCharge(rt, tool, args, call.money, ctx.subject);
      if (refusal !== undefined) return { kind: 'refused', reason: 'policy', detail: refusal };
    }

    const intent = newIntent(rt, tool, call, decision);
    if (limits !== undefined) {
      const admitted = await limits.reservePaid(tool, ctx.subject, intent.id, limits.clock(), call.money);
      if (admitted.kind === 'limited') return limitedOutcome(rt, admitted.hit);
    }
    // Atomic across instances: only if the binding still points where we looked. If an identical
    // call on another instance opened an intent meanwhile, go round and resume that one instead.
    const owner = round < MAX_OPEN_ROUNDS ? { bindingOwner: existing?.id ?? null } : {};
    const { paymentTtlMs } = rt.settings;
    // A stateless anonymous payer is new on every request: its tool's pool of them is bounded instead.
    const pooled = subjectPool(ctx.subject) !== undefined;
    const open = pooled ? rt.settings.anonymousLimits : rt.settings.limits;
    const inserted = await insertIntent(rt.store, intent, { ...owner, limits: open, openMs: paymentTtlMs });
    if (inserted.kind !== 'inserted' && limits !== undefined) await limits.release(ctx.subject, intent.id);
    if (inserted.kind === 'inserted') {
      rt.logger.debug('payment intent created', { intentId: intent.id, tool: tool.name, amount: call.money });
      return { kind: 'collect', intent, decision, ...(repeatOf ? { repeatOf } : {}) };
    }
    if (inserted.kind === 'limit') {
      if (pooled)
        return {
          kind: 'refused',
          reason: 'too_many_open',
          detail: `"${tool.name}" has ${inserted.open} unpaid payments open from callers without a session or sign-in, ${inserted.what === 'open' ? 'the most' : 'holding the most call data'} this server allows at once; try again once some are paid or have expired (after ${spoken(paymentTtlMs)}), or call signed in.`,
        };
      const held =
        inserted.what === 'open'
          ? `You have ${inserted.open} unpaid payments open for this server`
          : `Your ${inserted.open} unpaid payments open for this server hold too much call data`;
      return {
        kind: 'refused',
        reason: 'too_many_open',
        detail: `${held}; pay or let them expire (they expire after ${spoken(paymentTtlMs)}) before starting another.`,
      };
    }
    if (inserted.kind === 'full') {
      return {
        kind: 'refused',
        reason: 'too_many_open',
        detail: 'This server cannot open more payments right now; try again later.',
      };
    }
  }
}

/** A call of the free allowance: paid for nothing, with no provider, ready to run once. */
function newFreeIntent(rt: RouterCore, tool: PaidTool, call: PricedCall): IntentRecord {
  const now = Date.now();
  return {
    id: newIntentId(call.binding.subject),
    version: 1,
    binding: call.binding,
    argsJson: call.wireJson,
    description: tool.description,
    status: 'paid',
    eligible: [],
    attempts: [],
    run: 'unused',
    fence: 0,
    runErrors: [],
    free: true,
    createdAt: now,
    updatedAt: now,
    expiresAt: now + rt.settings.resultTtlMs,
  };
}

function limitedOutcome(rt: RouterCore, hit: LimitHit): Outcome {
  rt.telemetry?.count('payrouter.limit.refusals', {
    'payrouter.limit.kind': hit.kind,
    'payrouter.limit.scope': hit.scope,
  });
  return { kind: 'limited', hit };
}

function newIntent(rt: RouterCore, tool: PaidTool, call: PricedCall, decision: RouteDecision): IntentRecord {
  const now = Date.now();
  const id = newIntentId(call.binding.subject);
  // When the route already names the provider (and no hosted page lets the payer choose), the
  // payment's plan goes in with the insert: one write fewer before the provider request.
  const { action } = decision;
  const named =
    action.kind === 'use' && !(action.basis === 'policy' && rt.settings.publicUrl)
      ? action.providerId
      : undefined;
  return {
    id,
    version: 1,
    binding: call.binding,
    argsJson: call.wireJson,
    description: tool.description,
    status: 'requires_method',
    eligible: decision.eligible.map((e) => e.providerId),
    attempts: [],
    ...(named === undefined ? {} : { plannedAttempt: planAttempt(rt, { id, attempts: [] }, named, now) }),
    run: 'unused',
    fence: 0,
    runErrors: [],
    createdAt: now,
    updatedAt: now,
    // Until a provider payment exists, the intent lives as long as a link would.
    expiresAt: now + rt.settings.paymentTtlMs + 60 * 60 * 1000,
  };
}

async function beforeCharge(
  rt: RouterCore,
  tool: PaidTool,
  args: unknown,
  amount: Money,
  subject: string,
): Promise<string | undefined> {
  const hook = rt.hooks.beforeCharge;
  if (!hook) return undefined;
  try {
    const verdict = await hook({ tool: tool.name, args, amount, subject });
    if (verdict === false) return 'not allowed';
    if (verdict && typeof verdict === 'object' && verdict.allow === false)
      return verdict.reason ?? 'not allowed';
    return undefined;
  } catch (error) {
    // A failing policy hook refuses: charging when the author's check could not run is the worse error.
    rt.logger.error('beforeCharge hook threw; refusing the charge', { error });
    return 'the payment policy check failed';
  }
}

/** Run `task` after every earlier task of the same key in this process has finished. */
async function serialised<T>(
  openings: Map<string, Promise<void>>,
  key: string,
  task: () => Promise<T>,
): Promise<T> {
  const previous = openings.get(key);
  // Nothing before it (the usual case): it starts now, not a microtask later.
  const current = previous === undefined ? task() : previous.then(task, task);
  const settled = current.then(
    () => undefined,
    () => undefined,
  );
  openings.set(key, settled);
  try {
    return await current;
  } finally {
    if (openings.get(key) === settled) openings.delete(key);
  }
}

/** A duration as a person says it: "60 minutes", "2 hours". */
function spoken(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 120) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  return `${Math.round(minutes / 60)} hours`;
}
