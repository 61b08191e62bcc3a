import type { IntentRecord } from '../core/intent/record.js';
import { intentMoney, type ToolResult } from '../core/intent/record.js';
import {
  type ClaimOutcome,
  claimRun,
  completeRun,
  markDelivered,
  releaseRun,
  runBlocker,
  sameBinding,
  settleRefund,
} from '../core/intent/transitions.js';
import { namespaced } from '../core/logger.js';
import type { Money } from '../core/money/money.js';
import { refundAttempt } from './attempts.js';
import type { PaidClaim } from './confirmation/status-update.js';
import { mutateIntent, updateIntent } from './intents.js';
import { announcePaid, eventOf, ledgerAmount, providerOf } from './paid-events.js';
import {
  type CallExtra,
  expectedBinding,
  type PaidTool,
  type PaymentContext,
  priceForCall,
} from './paid-tool.js';
import { type RouterCore, runHook } from './runtime.js';
import { describeRun } from './telemetry/steps.js';

/** Makes run owners unique within this process. */
let claimCounter = 0;

export type RunOutcome =
  | { kind: 'result'; result: ToolResult; intent: IntentRecord }
  | { kind: 'tool_failed'; message: string; result?: ToolResult; intent: IntentRecord; refunded: boolean }
  | { kind: 'not_paid'; intent: IntentRecord }
  | { kind: 'invalid_arguments'; message: string }
  /** A run failed and its payment was refunded: nothing may run for it any more. */
  | { kind: 'refunded'; intent: IntentRecord }
  /** A run failed and its refund is decided but not made yet (its refunder holds the lease, or died holding it). */
  | { kind: 'refunding'; intent: IntentRecord }
  | { kind: 'mismatch' }
  | { kind: 'gone' };

/**
 * What the handler of a paid run learns about its payment (`extra.payment` in the MCP layer).
 * `idempotencyKey` is derived from the intent: a run repeated after a crash (at least once, see
 * the README) gets the same key, so the handler can make its side effects idempotent.
 */
export type RunPayment = PaymentContext;

export function runPaymentOf(intent: IntentRecord): RunPayment {
  const paid = intent.attempts.find((a) => a.status === 'paid') ?? intent.attempts.at(-1);
  const money = intentMoney(intent);
  return {
    paymentId: intent.id,
    idempotencyKey: `payrouter_run_${intent.id}`,
    // A free call of the allowance was paid nothing, by no provider.
    amount: intent.free === true ? { minor: 0, currency: money.currency } : money,
    provider: intent.free === true ? 'free' : (paid?.providerId ?? ''),
    ...(intent.free === true || paid === undefined ? {} : { providerPaymentId: paid.paymentId }),
  };
}

/**
 * Run the bound tool of a paid intent exactly once per lease. The right to run is the store's
 * run lease, taken and timed on the store's clock (so instance clocks do not matter), then a
 * compare-and-set claim with a fencing token. Concurrent callers (on any instance) wait for the
 * one that holds it and get its stored result; a crashed runner's lease runs out and the next
 * caller takes over.
 */
export async function runOnce(
  core: RouterCore,
  tool: PaidTool,
  intent: IntentRecord,
  extra: CallExtra,
  /** The protocol's parsed arguments of this very call; without them the stored wire form is parsed once. */
  given?: Record<string, unknown>,
  /** A claim the write that made the payment paid carried (`paidClaim`): the run starts from it. */
  prepared?: RunClaim,
): Promise<RunOutcome> {
  const started = prepared?.start(intent.id);
  if (started !== undefined) {
    return execute(
      core,
      tool,
      started.intent,
      started.fence,
      started.owner,
      extra,
      started.args,
      started.keeper,
    );
  }
  let args = given;
  if (args === undefined && intent.run !== 'done') {
    const decoded = await decodeDeferred(tool, intent);
    if (!decoded.ok) return { kind: 'invalid_arguments', message: decoded.message };
    args = decoded.args;
  }
  // The binding the tool as it is now would give this payment, not the stored one compared with itself.
  const expected = expectedBinding(tool, intent);
  const owner = runOwner(core, extra);
  const leaseMs = core.settings.leaseMs;
  let current: IntentRecord | undefined = intent;
  let refundWaited = false;
  for (;;) {
    current ??= await core.store.get(intent.id);
    if (current === undefined) return { kind: 'gone' };
    const blocked = runBlocker(current, expected);
    if (blocked?.kind === 'refunding' && current.run === 'refunding') {
      // A refund chosen but not settled: its refunder holds the run lease, or died holding it
      // (then the first read after the lease runs out makes it). A live one is waited for once.
      const held = await core.store.acquireLease(intent.id, owner, leaseMs);
      if (held.kind === 'busy') {
        if (refundWaited || extra.signal.aborted) return { kind: 'refunding', intent: current };
        refundWaited = true;
        await waitForChange(core, intent.id, current.version, Math.max(10, held.remainingMs), extra.signal);
      } else await resumeRefund(core, intent.id, owner);
      current = undefined;
      continue;
    }
    if (blocked !== undefined) return finish(core, blocked, current);

    const lease = await core.store.acquireLease(intent.id, owner, leaseMs);
    if (lease.kind === 'busy') {
      await waitForChange(core, intent.id, current.version, Math.max(10, lease.remainingMs), extra.signal);
      if (extra.signal.aborted) return { kind: 'not_paid', intent: current };
      current = undefined;
      continue;
    }
    const claim: { intent: IntentRecord; value: ClaimOutcome } | undefined = await mutateIntent<ClaimOutcome>(
      core.store,
      intent.id,
      (latest) => {
        const { next, outcome } = claimRun(latest, expected, owner, Date.now());
        return { next, value: outcome };
      },
      current,
    );
    if (claim?.value.kind === 'claimed') {
      // A free call is announced by its first claim; a paid one where its status became paid, and
      // an authorized credential when its settlement succeeds.
      if (claim.value.fence === 1 && claim.intent.free === true) await announcePaid(core, claim.intent);
      return execute(core, tool, claim.intent, claim.value.fence, owner, extra, args ?? {});
    }
    // Nothing to run after all (done meanwhile, or a run of an older version still holds it).
    await core.store.releaseLease(intent.id, owner);
    if (!claim) return { kind: 'gone' };
    if (claim.value.kind === 'busy') {
      await waitForChange(
        core,
        intent.id,
        claim.intent.version,
        Math.max(10, claim.value.until - Date.now()),
        extra.signal,
      );
      if (extra.signal.aborted) return { kind: 'not_paid', intent: claim.intent };
      current = undefined;
      continue;
    }
    current = claim.intent;
  }
}

/**
 * Unique per claim: a request id alone may repeat across sessions of one instance, so a counter
 * of this process follows it (the instance id is random per router already).
 */
function runOwner(core: RouterCore, extra: CallExtra): string {
  return `${core.instanceId}:${String(extra.requestId)}:${(claimCounter++).toString(36)}`;
}

/** A PaidClaim made by `paidClaim`, and what runOnce needs to start the run it claimed. */
export interface RunClaim extends PaidClaim {
  /**
   * The claimed run, handed over once (its lease kept alive from the claim on), or undefined when
   * no write carried the claim.
   */
  start(intentId: string):
    | {
        intent: IntentRecord;
        fence: number;
        owner: string;
        args: Record<string, unknown>;
        keeper: () => void;
      }
    | undefined;
  /**
   * Call when done with the claim: a claim that was carried but never started (something failed
   * in between) gives its lease back, so a retry need not wait for it to run out.
   */
  dispose(): Promise<void>;
}

/**
 * A claim for the caller about to run `intent` once it is paid (confirm_payment), attached to the
 * fresh status read that may find it paid: the run lease is taken when the provider says paid, and
 * the claim rides on the write that records it. The same checks as runOnce's claim apply (the
 * binding of the tool as it is now, a replayable stored call, one attempt: a paid intent with
 * several has its others closed before its run, which a lease must not wait through).
 */
export function paidClaim(
  core: RouterCore,
  tool: PaidTool,
  intent: IntentRecord,
  extra: CallExtra,
  /** The protocol's parsed arguments of this very call, as runOnce takes them. */
  given?: Record<string, unknown>,
): RunClaim {
  const expected = expectedBinding(tool, intent);
  const owner = runOwner(core, extra);
  let args: Record<string, unknown> | undefined;
  let keeper: (() => void) | undefined;
  let started = false;
  const giveBack = async () => {
    keeper?.();
    keeper = undefined;
    await giveBackLease(core, intent.id, owner);
  };
  const claim: RunClaim = {
    async take(current) {
      if (current.id !== intent.id || current.free === true || current.attempts.length > 1) return false;
      if (current.run !== 'unused' || !sameBinding(current.binding, expected) || extra.signal.aborted)
        return false;
      const decoded =
        given === undefined ? await decodeDeferred(tool, current) : { ok: true as const, args: given };
      if (!decoded.ok) return false;
      const lease = await core.store.acquireLease(intent.id, owner, core.settings.leaseMs);
      if (lease.kind !== 'acquired') return false;
      args = decoded.args;
      // Kept alive from here: the paid announcement (onPaid, awaited) comes before the run.
      keeper = leaseKeeperOf(core).keep(intent.id, owner);
      return true;
    },
    apply(next, now) {
      if (next.attempts.length > 1) return undefined;
      const { next: claimed, outcome } = claimRun(next, expected, owner, now);
      return claimed !== undefined && outcome.kind === 'claimed'
        ? { next: claimed, fence: outcome.fence }
        : undefined;
    },
    release: giveBack,
    start(intentId) {
      const carried = claim.claimed;
      if (
        started ||
        carried === undefined ||
        intentId !== intent.id ||
        args === undefined ||
        keeper === undefined
      )
        return undefined;
      started = true;
      return { intent: carried.intent, fence: carried.fence, owner, args, keeper };
    },
    async dispose() {
      if (claim.claimed !== undefined && !started) {
        started = true;
        await giveBack();
      }
    },
  };
  return claim;
}

/** The outcome of a claim that found nothing to run. */
async function finish(core: RouterCore, blocked: ClaimOutcome, intent: IntentRecord): Promise<RunOutcome> {
  switch (blocked.kind) {
    case 'mismatch':
      return { kind: 'mismatch' };
    case 'not_paid':
      return { kind: 'not_paid', intent };
    case 'refunding':
      return { kind: 'refunded', intent };
    case 'done': {
      const delivered = await updateIntent(
        core.store,
        intent.id,
        (latest) => markDelivered(latest, Date.now()),
        intent,
      );
      return { kind: 'result', result: blocked.result, intent: delivered ?? intent };
    }
    default:
      // 'claimed' and 'busy' are never blockers.
      return { kind: 'not_paid', intent };
  }
}

async function execute(
  core: RouterCore,
  tool: PaidTool,
  intent: IntentRecord,
  fence: number,
  owner: string,
  extra: CallExtra,
  args: Record<string, unknown>,
  /** The keeper of a lease kept alive since its claim (`paidClaim`); else one starts here. */
  keeper?: () => void,
): Promise<RunOutcome> {
  let result: ToolResult | undefined;
  let failure: string | undefined;
  const stopRenewing = keeper ?? leaseKeeperOf(core).keep(intent.id, owner);
  const started = performance.now();
  try {
    const run = () => Promise.resolve(tool.handler(args, extra, runPaymentOf(intent)));
    const traced = core.telemetry?.callOf(extra);
    result = traced ? await traced.step('payrouter.run', run, describeRun) : await run();
    if (result.isError === true) failure = firstText(result) ?? 'the tool reported an error';
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
  } finally {
    stopRenewing();
  }
  const runLog = namespaced(core.logger, 'run');
  if (runLog.isLevelEnabled?.('debug') !== false)
    runLog.debug('tool ran', {
      intentId: intent.id,
      tool: tool.name,
      ok: failure === undefined,
      durationMs: Math.round(performance.now() - started),
      ...(failure === undefined ? {} : { error: failure }),
    });

  if (failure === undefined && result !== undefined) {
    // Stored as not delivered while anything can still stand between it and the caller (the
    // onToolRun hook): if this process dies there, the same call retried on any instance is handed
    // this result, not a new payment. With no hook the answer leaves right away: one write, not two.
    // The run lease is left to run out on its own: a done run is never claimed again.
    const deliverNow = core.hooks.onToolRun === undefined && !extra.signal.aborted;
    const stored = await mutateIntent(
      core.store,
      intent.id,
      (current) => ({
        next: completeRun(current, fence, result, Date.now(), core.settings.resultTtlMs, deliverNow),
        value: undefined,
      }),
      intent,
    );
    const completed = stored?.intent;
    if (!stored?.changed) {
      // Our lease ran out and another runner took over: its result is the one kept.
      core.logger.warn('tool finished after its lease was taken over; result not stored', {
        intentId: intent.id,
      });
    } else {
      await publishQuietly(core, stored.intent);
    }
    if (stored?.changed)
      await core.ledger?.record(intent, 'run', {
        id: String(fence),
        amount: ledgerAmount(intent),
        ok: true,
        ...providerOf(intent),
      });
    if (core.hooks.onToolRun !== undefined)
      await runHook(core, 'onToolRun', core.hooks.onToolRun, { ...eventOf(intent), ok: true });
    const delivered =
      stored?.changed === true && !deliverNow && !extra.signal.aborted
        ? await updateIntent(
            core.store,
            intent.id,
            (current) => markDelivered(current, Date.now()),
            stored.intent,
          ).catch((error: unknown) => {
            core.logger.warn('marking a result delivered failed', { intentId: intent.id, error });
            return undefined;
          })
        : undefined;
    return { kind: 'result', result, intent: delivered ?? completed ?? intent };
  }

  const message = failure ?? 'the tool returned nothing';
  // The refund is decided in the same write that ends the run: no retry can claim it after.
  const refundable = core.settings.onToolError === 'refund' && refundTarget(core, intent) !== undefined;
  core.logger.warn(
    refundable ? 'paid tool failed; refunding' : 'paid tool failed; payment kept for a retry',
    {
      intentId: intent.id,
      tool: tool.name,
      error: message,
    },
  );
  // Noted before it is decided: if this process dies before making it, any instance finds it.
  if (refundable) await noteRefund(core, intent.id);
  const released = await updateIntent(
    core.store,
    intent.id,
    (current) => releaseRun(current, fence, message, Date.now(), refundable),
    intent,
  );
  const refunding = refundable && released?.run === 'refunding';
  // A refund keeps the run lease until it is settled: one refunder at a time, across instances.
  if (!refunding) await giveBackLease(core, intent.id, owner);
  await publishQuietly(core, released ?? intent);
  await core.ledger?.record(intent, 'run', {
    id: String(fence),
    amount: ledgerAmount(intent),
    ok: false,
    ...providerOf(intent),
  });
  await runHook(core, 'onToolRun', core.hooks.onToolRun, { ...eventOf(intent), ok: false, error: message });
  const refunded = refunding
    ? await refund(core, released).finally(() => giveBackLease(core, intent.id, owner))
    : false;
  const latest = refunded ? ((await core.store.get(intent.id)) ?? released) : released;
  return {
    kind: 'tool_failed',
    message,
    ...(result === undefined ? {} : { result }),
    intent: latest ?? intent,
    refunded,
  };
}

function refundTarget(core: RouterCore, intent: IntentRecord) {
  const attempt = intent.attempts.find((a) => a.status === 'paid') ?? intent.attempts.at(-1);
  const provider = attempt ? core.providerById.get(attempt.providerId) : undefined;
  return attempt && provider?.refundPayment ? attempt : undefined;
}

/** Refund a payment whose run is `refunding`, then settle it: refunded, or kept for a retry if the provider refused. */
async function refund(core: RouterCore, intent: IntentRecord): Promise<boolean> {
  const attempt = refundTarget(core, intent);
  let ok = false;
  if (attempt) {
    try {
      await refundAttempt(core, intent.id, attempt);
      ok = true;
    } catch (error) {
      core.logger.error('refund after tool failure failed; payment kept for a retry', {
        intentId: intent.id,
        error,
      });
    }
  }
  const settled = await updateIntent(core.store, intent.id, (current) =>
    settleRefund(current, ok, Date.now()),
  );
  if (settled) await publishQuietly(core, settled);
  // Settled by this write or an earlier one: nothing is left for a sweep to make.
  if (settled?.run !== 'refunding') await dropRefund(core, intent.id);
  return ok;
}

async function noteRefund(core: RouterCore, intentId: string): Promise<void> {
  await core.store.noteRefund?.(intentId).catch((error: unknown) => {
    core.logger.warn('noting a refund for the sweep failed; it is made when the payment is touched again', {
      intentId,
      error,
    });
  });
}

async function dropRefund(core: RouterCore, intentId: string): Promise<void> {
  await core.store.dropRefund?.(intentId).catch((error: unknown) => {
    core.logger.warn('dropping a settled refund from the sweep failed', { intentId, error });
  });
}

/** Refunds one sweep looks at, at most. */
const SWEEP_BATCH = 100;
let sweepCounter = 0;

/**
 * Make the refunds whose refunder died before making them, without waiting for their payment to
 * be touched again: each one whose run lease is free (its refunder's has run out) is made and
 * settled here, once across instances (the lease), and the provider's refund is idempotent per
 * payment. Refunds of a live refunder (lease held) are left to it.
 */
export async function sweepRefunds(core: RouterCore): Promise<number> {
  const { store } = core;
  if (store.refundsToSettle === undefined) return 0;
  let made = 0;
  for (const intentId of await store.refundsToSettle(SWEEP_BATCH)) {
    const intent = await store.get(intentId);
    if (intent?.run !== 'refunding') {
      await dropRefund(core, intentId);
      continue;
    }
    const owner = `${core.instanceId}:sweep:${(sweepCounter++).toString(36)}`;
    const lease = await store.acquireLease(intentId, owner, core.settings.leaseMs);
    if (lease.kind === 'busy') continue;
    await resumeRefund(core, intentId, owner);
    made += 1;
  }
  return made;
}

/**
 * Make a refund whose refunder died between deciding it and settling it (the caller holds the run
 * lease). The provider's refund is idempotent per payment and the ledger keeps one entry per
 * refund, so a refund that did reach the provider before the crash is not made twice.
 */
async function resumeRefund(core: RouterCore, intentId: string, owner: string): Promise<void> {
  try {
    const latest = await core.store.get(intentId);
    if (latest?.run !== 'refunding') return;
    core.logger.warn('making a refund decided by a run that did not settle it', { intentId });
    await refund(core, latest);
  } finally {
    await giveBackLease(core, intentId, owner);
  }
}

async function giveBackLease(core: RouterCore, intentId: string, owner: string): Promise<void> {
  await core.store.releaseLease(intentId, owner).catch((error: unknown) => {
    core.logger.warn('giving back a run lease failed', { intentId, error });
  });
}

function firstText(result: ToolResult): string | undefined {
  for (const block of result.content ?? []) {
    const { type, text } = (block ?? {}) as { type?: unknown; text?: unknown };
    if (type === 'text' && typeof text === 'string') return text;
  }
  return undefined;
}

/**
 * Wake callers waiting on this run (other instances included). A failed publish must not turn a
 * run whose result is stored into an error: waiters also re-read the store on their own.
 */
async function publishQuietly(core: RouterCore, intent: IntentRecord): Promise<void> {
  try {
    await core.store.publish({ intentId: intent.id, status: intent.status, version: intent.version });
  } catch (error) {
    core.logger.warn('publishing a run change failed', { intentId: intent.id, error });
  }
}

/** How often the keeper looks at the runs in progress, as a fraction of the lease. */
const RENEW_FRACTION = 3;

/**
 * The lease is how another instance takes over from a crashed one, not a limit on how long a tool
 * may run. One keeper per router renews the leases of the runs still working once they are a
 * third of the lease old: one unref'd timer while any run is in progress, none otherwise (so the
 * process can exit), and no store traffic for the short runs that are most runs.
 */
class LeaseKeeper {
  readonly #runs = new Map<string, { intentId: string; owner: string; since: number }>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #next = 0;

  constructor(private readonly core: RouterCore) {}

  /** Keep the lease of this run alive until the returned function is called. */
  keep(intentId: string, owner: string): () => void {
    const id = String(this.#next++);
    this.#runs.set(id, { intentId, owner, since: Date.now() });
    if (this.#timer === undefined) {
      const period = Math.max(1, Math.floor(this.core.settings.leaseMs / RENEW_FRACTION));
      this.#timer = setInterval(() => this.#renew(period), period);
      this.#timer.unref();
    }
    // The timer is not stopped here: back-to-back short runs reuse it, and it stops itself the
    // first time it finds no run in progress (it is unref'd, so it never keeps the process alive).
    return () => {
      this.#runs.delete(id);
    };
  }

  #renew(period: number): void {
    if (this.#runs.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const now = Date.now();
    const leaseMs = this.core.settings.leaseMs;
    for (const run of this.#runs.values()) {
      if (now - run.since < period) continue;
      this.core.store.renewLease(run.intentId, run.owner, leaseMs).then(
        (held) => {
          if (!held) this.core.logger.warn('a running tool lost its run lease', { intentId: run.intentId });
        },
        (error: unknown) =>
          this.core.logger.warn('renewing a run lease failed', { intentId: run.intentId, error }),
      );
    }
  }
}

const keepers = new WeakMap<RouterCore, LeaseKeeper>();

function leaseKeeperOf(core: RouterCore): LeaseKeeper {
  let keeper = keepers.get(core);
  if (keeper === undefined) {
    keeper = new LeaseKeeper(core);
    keepers.set(core, keeper);
  }
  return keeper;
}

/**
 * Resolve when the store reports a change of this intent, after `ms`, or on abort. The change may
 * have been published after the caller looked (at `seenVersion`) and before this listens: the
 * record is read once more after subscribing, so a finished run is not waited out on the timer.
 */
function waitForChange(
  core: RouterCore,
  intentId: string,
  seenVersion: number | undefined,
  ms: number,
  signal: AbortSignal,
): Promise<void> {
  return new Promise((resolve) => {
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unsubscribe();
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.min(ms, 1000));
    timer.unref();
    const unsubscribe = core.store.subscribe((change) => {
      if (change.intentId === intentId) done();
    });
    signal.addEventListener('abort', done, { once: true });
    core.store.get(intentId).then(
      (latest) => {
        if (latest?.version !== seenVersion) done();
      },
      // The timer and the subscription still stand.
      () => undefined,
    );
  });
}

/**
 * A deferred run (confirm_payment, another instance) parses the stored wire form once, and a
 * dynamic price is computed again from what was parsed: a different price refuses the run.
 */
async function decodeDeferred(
  tool: PaidTool,
  intent: IntentRecord,
): Promise<{ ok: true; args: Record<string, unknown> } | { ok: false; message: string }> {
  const parsed = tool.parseWire(intent.argsJson);
  if (!parsed.ok) return parsed;
  if (tool.fixedPrice === undefined) {
    let money: Money;
    try {
      money = await priceForCall(tool, parsed.args);
    } catch {
      return { ok: false, message: 'the price of the stored call could not be computed again' };
    }
    if (money.minor !== intent.binding.amount || money.currency !== intent.binding.currency)
      return { ok: false, message: 'the price of this call has changed since it was paid' };
  }
  return parsed;
}
