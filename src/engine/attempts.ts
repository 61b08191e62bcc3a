import { ProviderError } from '../core/errors.js';
import { joined } from '../core/ids.js';
import type { IntentRecord, PlannedAttempt, ProviderAttempt } from '../core/intent/record.js';
import { intentMoney, withoutKey } from '../core/intent/record.js';
import { isFinalStatus, type PaymentStatus } from '../core/intent/status.js';
import { addAttempt, liveAttempt } from '../core/intent/transitions.js';
import { type CreatedPayment, redirectUrlOf } from '../core/provider.js';
import { mutateIntent, updateIntent } from './intents.js';
import { announcePaid } from './paid-events.js';
import type { RouterCore } from './runtime.js';
import { runHook } from './runtime.js';
import { recordTransition } from './telemetry/payment-metrics.js';
import { createAttributes } from './telemetry/steps.js';

/** A plan this young, held by the caller, is sent without reading the intent again. */
const FRESH_PLAN_MS = 10_000;

/** Switching methods back and forth (pay page, confirm_payment) must not mint checkout sessions without end. */
const MAX_ATTEMPTS_PER_INTENT = 8;

/**
 * Make sure the intent has a live payment at `providerId`, creating it at most once.
 * The request's parameters (idempotency key, expiry) are stored before it is sent, so a retry
 * after a timeout or a crash replays the same request instead of making a second payment.
 */
export function ensureAttempt(
  core: RouterCore,
  intentId: string,
  providerId: string,
  /** The copy the caller holds: when it already carries this provider's plan, no read is needed to send it. */
  known?: IntentRecord,
  /** The call asking (its `extra`), whose span gets the create step. */
  call?: object,
): Promise<IntentRecord> {
  // Walleot has no idempotency: a second concurrent create would make a second (orphan) session.
  const key = `${core.instanceId}|${intentId}|${providerId}`;
  let pending = creating.get(key);
  if (pending === undefined) {
    pending = createAttempt(core, intentId, providerId, known, call).finally(() => creating.delete(key));
    creating.set(key, pending);
  }
  return pending;
}

/** Creates in flight in this process: a second caller for the same intent and provider joins the first. */
const creating = new Map<string, Promise<IntentRecord>>();

/**
 * The fixed parameters of the next provider payment of an intent: idempotency key, expiry and
 * return URLs. Written before the request is sent (with the insert itself when the route already
 * names the provider), so every retry sends the same request.
 */
export function planAttempt(
  core: RouterCore,
  intent: Pick<IntentRecord, 'id' | 'attempts'>,
  providerId: string,
  now: number,
  /** A plan made again for the same attempt: its key must differ from the refused one's. */
  again = false,
): PlannedAttempt {
  const publicUrl = core.settings.publicUrl;
  const key = ['payrouter', intent.id, intent.attempts.length + 1, providerId];
  return {
    providerId,
    idempotencyKey: again ? [...key, now.toString(36)].join('_') : key.join('_'),
    expiresAt: now + core.settings.paymentTtlMs,
    plannedAt: now,
    ...(publicUrl === undefined
      ? {}
      : {
          returnUrls: {
            success: joined(publicUrl, '/return/', intent.id, '?outcome=success'),
            cancel: joined(publicUrl, '/return/', intent.id, '?outcome=cancel'),
          },
        }),
  };
}

async function createAttempt(
  core: RouterCore,
  intentId: string,
  providerId: string,
  known: IntentRecord | undefined,
  call: object | undefined,
): Promise<IntentRecord> {
  const provider = core.providerById.get(providerId);
  if (!provider)
    throw new ProviderError(providerId, 'not_supported', `provider "${providerId}" is not configured`);
  const now = Date.now();
  // A copy holding this provider's plan made just now and no attempt yet (the one inserted with
  // the plan, in this very call) is sent as is: a fresh read would not make read-then-send atomic
  // either, and a stale copy only re-sends the stored request (same idempotency key), recorded once
  // below. Older plans take the read, where a plan too old to send is replaced.
  const plan0 = known?.plannedAttempt;
  const held =
    known?.id === intentId &&
    plan0?.providerId === providerId &&
    now - plan0.plannedAt < FRESH_PLAN_MS &&
    known.attempts.length === 0
      ? { intent: known, value: 'planned' as const }
      : undefined;
  const planned =
    held ??
    (await mutateIntent(core.store, intentId, (current) => {
      if (current.attempts.length >= MAX_ATTEMPTS_PER_INTENT) return { value: 'too_many' as const };
      const live = liveAttempt(current);
      if (
        live &&
        live.providerId === providerId &&
        !['failed', 'canceled', 'expired'].includes(live.status)
      ) {
        return { value: 'exists' as const };
      }
      if (current.plannedAttempt?.providerId === providerId) return { value: 'planned' as const };
      const plan = planAttempt(core, current, providerId, now);
      return { next: { ...current, plannedAttempt: plan, updatedAt: now }, value: 'planned' as const };
    }));
  if (!planned) throw new ProviderError(providerId, 'not_found', `payment ${intentId} no longer exists`);
  if (planned.value === 'exists') return planned.intent;
  if (planned.value === 'too_many') {
    throw new ProviderError(
      providerId,
      'invalid_request',
      `payment ${intentId} has switched methods too often`,
    );
  }
  let plan = planned.intent.plannedAttempt!;
  const intent = planned.intent;

  // Everything sent comes from the stored plan: a retry by any instance sends the same request.
  const send = () =>
    provider.createPayment(
      { money: intentMoney(intent), description: intent.description, intentId: intent.id },
      {
        idempotencyKey: plan.idempotencyKey,
        metadata: { payrouter_intent: intent.id, tool: intent.binding.tool.slice(0, 500) },
        expiresAt: plan.expiresAt,
        ...(plan.returnUrls ? { returnUrls: plan.returnUrls } : {}),
      },
    );
  const traced = call === undefined ? undefined : core.telemetry?.callOf(call);
  const create = () =>
    traced ? traced.step('payrouter.create', send, undefined, createAttributes(intent, providerId)) : send();
  let created: CreatedPayment;
  try {
    created = await create();
  } catch (error) {
    // The stored plan is always sent first: it may have reached the provider before (an answer
    // lost, a crash), and only its own key finds that payment again. Refused because its expiry
    // has fallen out of the provider's window, nothing was made with it: plan it again.
    const again = isStale(plan, provider.capabilities.expiryWindowMs, Date.now())
      ? await replan(core, intentId, plan, error)
      : undefined;
    if (again === undefined) throw error;
    if (again.kind === 'recorded') return again.intent;
    plan = again.plan;
    created = await create();
  }
  core.logger.debug('payment created', { intentId, providerId, paymentId: created.paymentId });
  // Only a redirect has a link to show; an action the agent completes by itself leaves it empty.
  const url = redirectUrlOf(created.action) ?? '';
  const attempt: ProviderAttempt = {
    providerId,
    paymentId: created.paymentId,
    url,
    status: created.status,
    rawStatus: created.rawStatus,
    idempotencyKey: plan.idempotencyKey,
    createdAt: Date.now(),
    expiresAt: created.expiresAt ?? plan.expiresAt,
    // An invoice or a credential requirement is kept with the attempt: there is no link to show.
    ...(created.action.kind === 'redirect' ? {} : { action: created.action }),
  };
  let isNew = false;
  let before = intent.status;
  const stored = await updateIntent(core.store, intentId, (current) => {
    // A concurrent call may have recorded the same payment (same idempotency key) first.
    if (current.attempts.some((a) => a.idempotencyKey === attempt.idempotencyKey)) return undefined;
    if (current.status === 'canceled' || current.status === 'paid') return undefined;
    isNew = true;
    before = current.status;
    return addAttempt(withoutKey(current, 'plannedAttempt'), attempt, Date.now());
  });
  if (!stored) throw new ProviderError(providerId, 'not_found', `payment ${intentId} no longer exists`);
  if (isNew) {
    // A payment paid on creation (prepaid credits) moved the intent to paid in this write.
    recordTransition(core.telemetry, before, stored);
    await core.ledger?.record(stored, 'payment', {
      id: plan.idempotencyKey,
      provider: providerId,
      providerPaymentId: created.paymentId,
    });
    if (core.telemetry?.counts('payrouter.payments.created'))
      core.telemetry.count('payrouter.payments.created', {
        'payrouter.provider': providerId,
        'payrouter.tool': stored.binding.tool,
        'payrouter.currency': stored.binding.currency,
      });
    await runHook(core, 'onPaymentCreated', core.hooks.onPaymentCreated, {
      intentId,
      tool: stored.binding.tool,
      subject: stored.binding.subject,
      amount: intentMoney(stored),
      providerId,
      paymentId: created.paymentId,
      url,
    });
    if (stored.status === 'paid' && before !== 'paid') await announcePaid(core, stored);
  }
  return stored;
}

/** A plan whose expiry no longer lies within the provider's window from now. */
function isStale(plan: PlannedAttempt, window: { min: number } | undefined, now: number): boolean {
  return window !== undefined && plan.expiresAt - now < window.min;
}

/**
 * Replace a refused stale plan by a new one (new key, new expiry), once across instances: the
 * plan another caller put there meanwhile is used as it is, and a payment recorded meanwhile is
 * the answer.
 */
async function replan(
  core: RouterCore,
  intentId: string,
  refused: PlannedAttempt,
  error: unknown,
): Promise<{ kind: 'plan'; plan: PlannedAttempt } | { kind: 'recorded'; intent: IntentRecord } | undefined> {
  if (!(error instanceof ProviderError) || error.code !== 'invalid_request') return undefined;
  const now = Date.now();
  const changed = await mutateIntent(core.store, intentId, (current) => {
    const plan = current.plannedAttempt;
    if (plan === undefined || plan.providerId !== refused.providerId) return { value: undefined };
    if (plan.idempotencyKey !== refused.idempotencyKey) return { value: plan };
    const next = planAttempt(core, current, refused.providerId, now, true);
    return { next: { ...current, plannedAttempt: next, updatedAt: now }, value: next };
  });
  if (changed === undefined) return undefined;
  if (changed.value !== undefined) {
    core.logger.info('a payment plan refused for its expiry was planned again', {
      intentId,
      providerId: refused.providerId,
    });
    return { kind: 'plan', plan: changed.value };
  }
  const live = liveAttempt(changed.intent);
  return live?.providerId === refused.providerId ? { kind: 'recorded', intent: changed.intent } : undefined;
}

/** Cancel the live provider payment when the provider can; returns the provider's view. */
export async function cancelLiveAttempt(core: RouterCore, intent: IntentRecord): Promise<void> {
  const attempt = liveAttempt(intent);
  if (!attempt) return;
  const provider = core.providerById.get(attempt.providerId);
  if (!provider?.cancelPayment) return;
  try {
    const state = await provider.cancelPayment(attempt.paymentId);
    await core.confirmation.applyProviderState(intent.id, attempt.providerId, state);
  } catch (error) {
    core.logger.warn('could not cancel provider payment', {
      intentId: intent.id,
      providerId: attempt.providerId,
      error,
    });
  }
}

/**
 * Once one attempt is paid, no other attempt of the intent may keep money. Every other open
 * attempt is read; open ones are canceled where the provider allows; if the user paid two, the
 * one that can be refunded is refunded. A second payment no provider can refund is logged as an
 * error for the operator.
 */
export async function closeOtherAttempts(core: RouterCore, intent: IntentRecord): Promise<void> {
  if (intent.attempts.length < 2 || !intent.attempts.some((a) => a.status === 'paid')) return;
  const statuses = new Map<ProviderAttempt, PaymentStatus>();
  for (const attempt of intent.attempts) {
    statuses.set(attempt, attempt.status);
    const provider = core.providerById.get(attempt.providerId);
    if (!provider || isFinalStatus(attempt.status)) continue;
    try {
      let state = await provider.getPayment(attempt.paymentId);
      if (state.status === 'pending' && provider.cancelPayment)
        state = await provider.cancelPayment(attempt.paymentId);
      await core.confirmation.applyProviderState(intent.id, attempt.providerId, state);
      statuses.set(attempt, state.status);
    } catch (error) {
      core.logger.warn('could not close another attempt of a paid intent', { intentId: intent.id, error });
    }
  }
  const paid = intent.attempts.filter((a) => statuses.get(a) === 'paid');
  const refundable = (a: ProviderAttempt) => core.providerById.get(a.providerId)?.refundPayment !== undefined;
  const kept = paid.find((a) => !refundable(a)) ?? paid[0];
  for (const attempt of paid) {
    if (attempt === kept) continue;
    const provider = core.providerById.get(attempt.providerId);
    if (!provider?.refundPayment) {
      core.logger.error(
        'the user paid twice for one call and neither payment can be refunded automatically',
        {
          intentId: intent.id,
          providerId: attempt.providerId,
          paymentId: attempt.paymentId,
        },
      );
      continue;
    }
    try {
      await refundAttempt(core, intent.id, attempt);
      core.logger.warn('refunded a second payment for one call', {
        intentId: intent.id,
        providerId: attempt.providerId,
      });
    } catch (error) {
      core.logger.error('refunding a second payment for one call failed', { intentId: intent.id, error });
    }
  }
}

/** Refund one paid attempt at its provider and record it. Throws when the provider fails. */
export async function refundAttempt(
  core: RouterCore,
  intentId: string,
  attempt: ProviderAttempt,
  reason?: string,
): Promise<void> {
  const provider = core.providerById.get(attempt.providerId);
  if (!provider?.refundPayment) {
    throw new ProviderError(attempt.providerId, 'not_supported', 'this provider cannot refund');
  }
  await provider.refundPayment(attempt.paymentId);
  const applied = await core.confirmation.applyProviderState(intentId, attempt.providerId, {
    paymentId: attempt.paymentId,
    status: 'refunded',
    rawStatus: 'refunded',
  });
  await afterRefund(core, intentId, attempt, applied, reason);
}

/** A refund is recorded in the ledger and gives its budget back to the payer's limits. */
async function afterRefund(
  core: RouterCore,
  intentId: string,
  attempt: ProviderAttempt,
  applied: unknown,
  reason: string | undefined,
): Promise<void> {
  const intent =
    (applied as { intent?: IntentRecord } | undefined)?.intent ?? (await core.store.get(intentId));
  if (intent === undefined) return;
  await core.ledger?.record(intent, 'refund', {
    id: attempt.paymentId,
    provider: attempt.providerId,
    providerPaymentId: attempt.paymentId,
    ...(reason === undefined ? {} : { reason }),
  });
  // Only when the intent itself is refunded: a second payment refunded for one call leaves the first spent.
  if (intent.status === 'refunded') await core.limits?.release(intent.binding.subject, intent.id);
}

/**
 * Pay an open intent with `providerId` (confirm_payment's `method`, the hosted pay page): creates
 * that provider's payment once and cancels the previous one. If the previous one was paid
 * meanwhile, nothing is switched: money that moved is never abandoned.
 * Throws ProviderError when the provider fails; returns the intent as stored afterwards.
 */
export async function selectMethod(
  core: RouterCore,
  intent: IntentRecord,
  providerId: string,
): Promise<IntentRecord> {
  if (!intent.eligible.includes(providerId)) {
    throw new ProviderError(providerId, 'not_supported', `"${providerId}" cannot take this payment`);
  }
  const checked = liveAttempt(intent) ? await core.confirmation.check(intent.id, { fresh: true }) : undefined;
  const current = checked?.intent ?? intent;
  if (current.status === 'paid' || isFinalStatus(current.status)) return current;
  const previous = liveAttempt(current);
  if (previous?.providerId === providerId) return current;
  const switched = await ensureAttempt(core, intent.id, providerId);
  if (previous) await cancelLiveAttempt(core, { ...current, attempts: [previous] });
  return (await core.store.get(intent.id)) ?? switched;
}
