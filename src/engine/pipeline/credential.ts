import { ProviderError } from '../../core/errors.js';
import type { IntentRecord, ProviderAttempt } from '../../core/intent/record.js';
import { intentMoney } from '../../core/intent/record.js';
import { authorizeIntent, liveAttempt, recordSettlement } from '../../core/intent/transitions.js';
import type { Charge, PaymentProvider } from '../../core/provider.js';
import { closeOtherAttempts } from '../attempts.js';
import { mutateIntent } from '../intents.js';
import { announcePaid } from '../paid-events.js';
import type { PaidTool } from '../paid-tool.js';
import type { RouterCore } from '../runtime.js';
import { recordTransition } from '../telemetry/payment-metrics.js';
import type { CallContext, PresentedCredential } from './context.js';
import type { Outcome } from './outcome.js';
import { runPaid } from './run.js';

/** How long a credential id stays spent in the store: longer than any credential's validity window. */
const CREDENTIAL_MEMORY_MS = 7 * 24 * 60 * 60 * 1000;
/** A settlement taken this long ago by a caller that never recorded its outcome (a crash) may be retried. */
const STALE_SETTLING_MS = 2 * 60 * 1000;

/** The charge of an intent, as a credential for it must pay. */
export function chargeOf(intent: IntentRecord): Charge {
  return { money: intentMoney(intent), description: intent.description, intentId: intent.id };
}

/** The eligible provider that takes credentials of this protocol. */
export function credentialProvider(
  rt: RouterCore,
  intent: IntentRecord,
  scheme: string,
): PaymentProvider | undefined {
  for (const id of intent.eligible) {
    const provider = rt.providerById.get(id);
    if (provider?.capabilities.credential === scheme && provider.verifyCredential) return provider;
  }
  return undefined;
}

/**
 * The machine offers of an intent: each eligible credential provider's requirements for its
 * charge, computed locally (no request), so every payment-required result carries them beside
 * the human methods.
 */
export function machineOffers(
  rt: RouterCore,
  intent: IntentRecord,
): Array<{ providerId: string; scheme: string; requirements: unknown }> {
  const offers: Array<{ providerId: string; scheme: string; requirements: unknown }> = [];
  for (const id of intent.eligible) {
    const provider = rt.providerById.get(id);
    const scheme = provider?.capabilities.credential;
    if (!provider?.offerCredential || scheme === undefined) continue;
    try {
      offers.push({ providerId: id, scheme, requirements: provider.offerCredential(chargeOf(intent)) });
    } catch (error) {
      rt.logger.warn('a machine offer could not be made', { intentId: intent.id, providerId: id, error });
    }
  }
  return offers;
}

/**
 * A call that came with a machine credential, after `open` found (or made) its intent: verify the
 * credential against this intent's binding (the provider checks the charge: amount, asset,
 * recipient, and the payment id that names tool, arguments and payer), spend it once in the store,
 * make the intent `authorized`, run once, and settle after a successful run only.
 */
export async function redeemCredential(
  rt: RouterCore,
  tool: PaidTool,
  intent: IntentRecord,
  ctx: CallContext,
  credential: PresentedCredential,
  args?: Record<string, unknown>,
): Promise<Outcome> {
  // Paid already (settled, result kept for this call): the stored result goes out, nothing is charged.
  if (intent.status === 'paid') return runPaid(rt, tool, intent, ctx, args);
  const provider = credentialProvider(rt, intent, credential.scheme);
  if (!provider?.verifyCredential)
    return rejected(intent, `no payment method here takes ${credential.scheme} payments for this call`);

  let verifiedId: string;
  try {
    const state = await provider.verifyCredential(credential.payload, chargeOf(intent));
    if (state.status !== 'authorized' && state.status !== 'paid')
      return rejected(intent, 'the payment was not accepted');
    verifiedId = state.paymentId;
  } catch (error) {
    if (error instanceof ProviderError) {
      rt.logger.debug('machine credential refused', { intentId: intent.id, reason: error.message });
      return rejected(intent, error.message.replace(/^[^:]+: /, ''));
    }
    throw error;
  }

  const live = liveAttempt(intent);
  const own = live?.providerId === provider.id && live.paymentId === verifiedId;
  if (!own) {
    // Single use across instances: the first call to present this credential spends it.
    const first = await rt.store.markEvent(`credential:${provider.id}:${verifiedId}`, CREDENTIAL_MEMORY_MS);
    if (!first) return rejected(intent, 'this payment credential was already used; sign a new one');
    const now = Date.now();
    const attempt: ProviderAttempt = {
      providerId: provider.id,
      paymentId: verifiedId,
      url: '',
      status: 'authorized',
      rawStatus: 'verified',
      idempotencyKey: `payrouter_${intent.id}_${verifiedId}`,
      createdAt: now,
    };
    const change = await mutateIntent(rt.store, intent.id, (current) => ({
      next: authorizeIntent(current, attempt, Date.now()),
      value: undefined,
    }));
    const authorized = change?.changed === true ? change.intent : undefined;
    if (!authorized) {
      const latest = change?.intent ?? intent;
      if (latest.status === 'paid') return runPaid(rt, tool, latest, ctx, args);
      return rejected(latest, 'this call is already being paid with another credential');
    }
    rt.logger.debug('machine credential verified', { intentId: intent.id, providerId: provider.id });
    // The subject pays by itself: its next calls get the machine offer first.
    await rt.store.setChoice(ctx.subject, provider.id, rt.settings.rememberChoiceMs);
    return runPaid(rt, tool, authorized, ctx, args);
  }
  return runPaid(rt, tool, intent, ctx, args);
}

/**
 * After a successful run of an `authorized` intent: settle its credential once (taken with
 * compare-and-set before the provider is asked). Resolves the intent as recorded and either the
 * receipt or why the settlement failed (the result is then withheld).
 */
export async function settleCredential(
  rt: RouterCore,
  intent: IntentRecord,
  ctx: CallContext,
): Promise<
  | { ok: true; intent: IntentRecord; receipt?: Record<string, unknown> }
  | { ok: false; intent: IntentRecord; reason: string }
> {
  const attempt = liveAttempt(intent);
  if (attempt?.settlement?.state === 'settled')
    return {
      ok: true,
      intent,
      ...(attempt.settlement.receipt ? { receipt: attempt.settlement.receipt } : {}),
    };
  const provider = attempt ? rt.providerById.get(attempt.providerId) : undefined;
  if (attempt === undefined || attempt.status !== 'authorized' || !provider?.settleCredential)
    return { ok: false, intent, reason: 'no verified payment to settle: send a new payment credential' };
  if (ctx.credential === undefined)
    return { ok: false, intent, reason: 'the payment is settled with the call that carries its credential' };

  const now = Date.now();
  const taken = await mutateIntent(rt.store, intent.id, (current) => {
    const live = liveAttempt(current);
    if (live?.paymentId !== attempt.paymentId) return { value: false };
    const stale = live.settlement?.state === 'settling' && live.settlement.at < now - STALE_SETTLING_MS;
    const base = stale
      ? { ...current, attempts: current.attempts.map((a) => (a === live ? withoutSettlement(a) : a)) }
      : current;
    const next = recordSettlement(base, attempt.paymentId, { state: 'settling', at: now }, now);
    return next ? { next, value: true } : { value: false };
  });
  if (!taken?.value) {
    const latest = taken?.intent ?? intent;
    const state = liveAttempt(latest)?.settlement;
    if (state?.state === 'settled')
      return { ok: true, intent: latest, ...(state.receipt ? { receipt: state.receipt } : {}) };
    return { ok: false, intent: latest, reason: 'settlement_in_progress: call again in a moment' };
  }

  const settled = await provider.settleCredential(ctx.credential.payload, chargeOf(intent));
  const written = await mutateIntent(rt.store, intent.id, (current) => ({
    next: recordSettlement(
      current,
      attempt.paymentId,
      {
        state: settled.ok ? 'settled' : 'failed',
        at: Date.now(),
        receipt: settled.receipt,
        ...(settled.reason === undefined ? {} : { reason: settled.reason }),
      },
      Date.now(),
    ),
    value: undefined,
  }));
  const recorded = written?.intent ?? taken.intent;
  // Counted by the writer that moved the status, once across instances.
  if (written?.changed === true) recordTransition(rt.telemetry, taken.intent.status, recorded);
  await rt.store
    .publish({ intentId: recorded.id, status: recorded.status, version: recorded.version })
    .catch(() => undefined);
  if (!settled.ok) {
    rt.logger.warn('machine payment settlement failed; result withheld', {
      intentId: intent.id,
      providerId: provider.id,
      reason: settled.reason,
    });
    return { ok: false, intent: recorded, reason: settled.reason ?? 'settlement_failed' };
  }
  // The money moved with this write: announced once, by the caller that settled.
  if (written?.changed === true && recorded.status === 'paid') await announcePaid(rt, recorded);
  // Paid now: no other attempt of this intent (a checkout link the person also opened) keeps money.
  await closeOtherAttempts(rt, recorded);
  return { ok: true, intent: recorded, receipt: settled.receipt };
}

function withoutSettlement(attempt: ProviderAttempt): ProviderAttempt {
  const { settlement: _settlement, ...rest } = attempt;
  return rest;
}

function rejected(intent: IntentRecord, why: string): Outcome {
  return { kind: 'payment_required', intent, reason: 'credential_rejected', detail: why };
}
