import { ProviderError } from '../../core/errors.js';
import { joined } from '../../core/ids.js';
import type { IntentRecord } from '../../core/intent/record.js';
import { intentMoney } from '../../core/intent/record.js';
import { isFinalStatus } from '../../core/intent/status.js';
import { advanceStatus, liveAttempt } from '../../core/intent/transitions.js';
import { namespaced } from '../../core/logger.js';
import { toDecimalString } from '../../core/money/money.js';
import { type RouteDecision, routeCharge } from '../../core/route/route.js';
import { cancelLiveAttempt, ensureAttempt } from '../attempts.js';
import { updateIntent } from '../intents.js';
import { deliveryLinkFor, methodLabel } from '../links.js';
import type { PaidTool } from '../paid-tool.js';
import type { RouterCore } from '../runtime.js';
import { describeWait } from '../telemetry/steps.js';
import { budget, type CallContext, type PaymentLink } from './context.js';
import type { Outcome } from './outcome.js';
import { runPaid } from './run.js';

/**
 * route → choose → attempt → deliver → await, for an open intent without a live payment.
 * A choice nobody made creates no payment.
 */
export async function collect(
  rt: RouterCore,
  tool: PaidTool,
  intent: IntentRecord,
  ctx: CallContext,
  decision?: RouteDecision,
  args?: Record<string, unknown>,
): Promise<Outcome> {
  const route = decision ?? (await reroute(rt, tool, intent, ctx));
  logRoute(rt, tool, intent, route);
  if (route.action.kind === 'none')
    return { kind: 'refused', reason: 'no_method', detail: route.action.message };
  // With a hosted pay page the payer chooses there: its link goes out, no provider payment until they do.
  if (route.action.kind === 'use' && route.action.basis === 'policy' && rt.settings.publicUrl)
    return deliver(rt, tool, intent, ctx, false, args);

  let providerId: string;
  if (route.action.kind === 'use') {
    providerId = route.action.providerId;
  } else {
    // A person chooses among the methods a person can use; machine offers go out in the result.
    const human = route.eligible.filter((e) => e.credential === undefined);
    const choice = await ctx.interaction.chooseMethod(ctx, intent, human.length > 0 ? human : route.eligible);
    if (choice.kind === 'input_required')
      return { kind: 'input_required', intent, ask: { kind: 'choose', eligible: route.eligible } };
    if (choice.kind === 'deferred') {
      if (ctx.signal.aborted) return { kind: 'refused', reason: 'canceled_call' };
      return { kind: 'payment_required', intent, reason: 'requires_method' };
    }
    if (choice.kind !== 'chosen') {
      const ended =
        (await updateIntent(rt.store, intent.id, (c) => advanceStatus(c, 'canceled', Date.now()))) ?? intent;
      return { kind: 'stopped', intent: ended, by: choice.kind, linkOpen: false };
    }
    providerId = choice.providerId;
    if (choice.remember) await rt.store.setChoice(ctx.subject, providerId, rt.settings.rememberChoiceMs);
  }

  let withAttempt: IntentRecord;
  try {
    withAttempt = await ensureAttempt(rt, intent.id, providerId, intent, ctx.extra);
  } catch (error) {
    return providerFailure(rt, intent, error);
  }
  if (withAttempt.status === 'paid') return runPaid(rt, tool, withAttempt, ctx, args);
  return deliver(rt, tool, withAttempt, ctx, false, args);
}

/** `payrouter:routing`: what the route step decided, and why each other provider was not a candidate. */
function logRoute(rt: RouterCore, tool: PaidTool, intent: IntentRecord, route: RouteDecision): void {
  const logger = namespaced(rt.logger, 'routing');
  if (logger.isLevelEnabled?.('debug') === false) return;
  const money = intentMoney(intent);
  const { action } = route;
  logger.debug('route', {
    intentId: intent.id,
    tool: tool.name,
    amount: `${toDecimalString(money)} ${money.currency}`,
    action: action.kind,
    ...(action.kind === 'use' ? { provider: action.providerId, basis: action.basis, why: action.why } : {}),
    ...(action.kind === 'none' ? { why: action.message } : {}),
    eligible: route.eligible.map((e) => e.providerId),
    excluded: route.excluded.map((e) => `${e.providerId}: ${e.reason}`),
  });
}

async function reroute(rt: RouterCore, tool: PaidTool, intent: IntentRecord, ctx: CallContext) {
  const remembered = await rt.store.getChoice(ctx.subject);
  return routeCharge({
    charge: intentMoney(intent),
    providers: rt.providers,
    toolProviders: tool.providers,
    remembered,
    client: ctx.client,
    policy: rt.settings.policy,
  });
}

export function providerFailure(rt: RouterCore, intent: IntentRecord, error: unknown): Outcome {
  rt.logger.error('creating the provider payment failed', { intentId: intent.id, error });
  const detail = error instanceof ProviderError ? error.userMessage : 'The payment could not be started.';
  return { kind: 'payment_required', intent, reason: 'provider_failed', detail };
}

/** deliver → await: hand the link over the call's interaction, then wait (bounded) for payment. */
export async function deliver(
  rt: RouterCore,
  tool: PaidTool,
  intent: IntentRecord,
  ctx: CallContext,
  resumed: boolean,
  args?: Record<string, unknown>,
): Promise<Outcome> {
  // An offer the agent pays by itself has no link to hand a person, and nothing to wait for: the
  // requirements go out in the result, and the retried call brings the credential.
  if (liveAttempt(intent)?.action?.kind === 'credential_required')
    return { kind: 'payment_required', intent, reason: resumed ? 'resumed' : 'new' };
  const link: PaymentLink = {
    url: deliveryLinkFor(rt, intent),
    label: methodLabel(rt, intent),
    deliveryId: joined(intent.id, '.', intent.attempts.length),
  };
  const answer = await ctx.interaction.deliver(ctx, intent, link);
  if (answer === 'input_required') return { kind: 'input_required', intent, ask: { kind: 'deliver', link } };
  if (answer === 'deferred') {
    const reason = liveAttempt(intent) === undefined ? 'requires_method' : resumed ? 'resumed' : 'new';
    return { kind: 'payment_required', intent, reason };
  }
  if (answer !== 'accepted') return stop(rt, tool, intent, ctx, answer, args);

  // A link just accepted is where a payment is most likely made next: its polls go first.
  rt.confirmation.noteActivity(intent.id);
  const wait = () =>
    rt.confirmation.waitFor(intent.id, {
      timeoutMs: budget(ctx, rt.settings.paymentWaitMs),
      signal: ctx.signal,
      onPoll: () => ctx.progress('Waiting for the payment to complete…'),
    });
  const traced = rt.telemetry?.callOf(ctx.extra);
  const waited = traced ? await traced.step('payrouter.await', wait, describeWait) : await wait();
  const current = waited?.intent ?? intent;
  if (current.status === 'paid') {
    await ctx.interaction.completed?.(ctx, link);
    return runPaid(rt, tool, current, ctx, args);
  }
  if (isFinalStatus(current.status)) return { kind: 'ended', intent: current, status: current.status };
  if (waited?.status === 'unknown') return { kind: 'payment_required', intent: current, reason: 'unknown' };
  return { kind: 'payment_required', intent: current, reason: 'timed_out' };
}

/** The payer declined or dismissed the link. They may have paid first: look before canceling. */
async function stop(
  rt: RouterCore,
  tool: PaidTool,
  intent: IntentRecord,
  ctx: CallContext,
  by: 'declined' | 'cancelled',
  args?: Record<string, unknown>,
): Promise<Outcome> {
  const checked = await rt.confirmation.check(intent.id, { fresh: true });
  const current = checked?.intent ?? intent;
  if (current.status === 'paid') return runPaid(rt, tool, current, ctx, args);
  await cancelLiveAttempt(rt, current);
  const after = (await rt.store.get(intent.id)) ?? current;
  if (after.status === 'paid') return runPaid(rt, tool, after, ctx, args);
  const live = liveAttempt(after);
  // The provider cannot cancel it (Walleot has no cancel API): the link would still take money,
  // so the payment stays open and a later confirm or retry still finds it.
  if (live !== undefined && !isFinalStatus(live.status))
    return { kind: 'stopped', intent: after, by, linkOpen: true };
  const canceled =
    (await updateIntent(rt.store, intent.id, (c) => advanceStatus(c, 'canceled', Date.now()))) ?? after;
  return { kind: 'stopped', intent: canceled, by, linkOpen: false };
}
