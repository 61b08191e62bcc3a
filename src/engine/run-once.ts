import type { IntentRecord } from '../core/intent/record.js';
import { intentMoney, type ToolResult } from '../core/intent/record.js';
import {
  type ClaimOutcome,
  claimRun,
  completeRun,
  markDelivered,
  releaseRun,
  renewLease,
} from '../core/intent/transitions.js';
import type { Money } from '../core/money/money.js';
import { refundAttempt } from './attempts.js';
import { mutateIntent, updateIntent } from './intents.js';
import { type CallExtra, expectedBinding, type PaidTool, priceForCall } from './paid-tool.js';
import { type RouterCore, runHook } from './runtime.js';

export type RunOutcome =
  | { kind: 'result'; result: ToolResult; intent: IntentRecord }
  | { kind: 'tool_failed'; message: string; result?: ToolResult; intent: IntentRecord; refunded: boolean }
  | { kind: 'not_paid'; intent: IntentRecord }
  | { kind: 'invalid_arguments'; message: string }
  | { kind: 'mismatch' }
  | { kind: 'gone' };

/**
 * Run the bound tool of a paid intent exactly once. Concurrent callers (on any instance) wait for
 * the one that holds the claim and get its stored result; a crashed runner's lease runs out and
 * the next caller takes over.
 */
export async function runOnce(
  core: RouterCore,
  tool: PaidTool,
  intent: IntentRecord,
  extra: CallExtra,
  /** The protocol's parsed arguments of this very call; without them the stored wire form is parsed once. */
  given?: Record<string, unknown>,
): Promise<RunOutcome> {
  let args = given;
  if (args === undefined && intent.run !== 'done') {
    const decoded = await decodeDeferred(tool, intent);
    if (!decoded.ok) return { kind: 'invalid_arguments', message: decoded.message };
    args = decoded.args;
  }
  // The binding the tool as it is now would give this payment, not the stored one compared with itself.
  const expected = expectedBinding(tool, intent);
  const owner = `${core.instanceId}:${String(extra.requestId)}`;
  let known: IntentRecord | undefined = intent;
  for (;;) {
    const claim = await mutateIntent<ClaimOutcome>(
      core.store,
      intent.id,
      (current) => {
        const { next, outcome } = claimRun(current, expected, owner, Date.now(), core.settings.leaseMs);
        return { next, value: outcome };
      },
      known,
    );
    known = undefined;
    if (!claim) return { kind: 'gone' };
    const outcome = claim.value;
    switch (outcome.kind) {
      case 'mismatch':
        return { kind: 'mismatch' };
      case 'not_paid':
        return { kind: 'not_paid', intent: claim.intent };
      case 'done': {
        const delivered = await updateIntent(core.store, intent.id, (current) =>
          markDelivered(current, Date.now()),
        );
        return { kind: 'result', result: outcome.result, intent: delivered ?? claim.intent };
      }
      case 'busy':
        await waitForChange(core, intent.id, Math.max(10, outcome.until - Date.now()), extra.signal);
        if (extra.signal.aborted) return { kind: 'not_paid', intent: claim.intent };
        continue;
      case 'claimed':
        if (outcome.fence === 1) {
          await runHook(core, 'onPaid', core.hooks.onPaid, eventOf(claim.intent));
        }
        return execute(core, tool, claim.intent, outcome.fence, extra, args ?? {});
    }
  }
}

async function execute(
  core: RouterCore,
  tool: PaidTool,
  intent: IntentRecord,
  fence: number,
  extra: CallExtra,
  args: Record<string, unknown>,
): Promise<RunOutcome> {
  let result: ToolResult | undefined;
  let failure: string | undefined;
  const stopRenewing = renewWhileRunning(core, intent.id, fence);
  try {
    result = await tool.handler(args, extra, {
      paymentId: intent.id,
      idempotencyKey: `payrouter_run_${intent.id}`,
      amount: intentMoney(intent),
      provider: paidProvider(intent),
    });
    if (result.isError === true) failure = firstText(result) ?? 'the tool reported an error';
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
  } finally {
    stopRenewing();
  }

  if (failure === undefined && result !== undefined) {
    // Stored as not delivered while anything can still stand between it and the caller (the
    // onToolRun hook): if this process dies there, the same call retried on any instance is handed
    // this result, not a new payment. With no hook the answer leaves right away: one write, not two.
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
    await runHook(core, 'onToolRun', core.hooks.onToolRun, { ...eventOf(intent), ok: true });
    const delivered =
      stored?.changed === true && !deliverNow && !extra.signal.aborted
        ? await updateIntent(core.store, intent.id, (current) => markDelivered(current, Date.now())).catch(
            (error: unknown) => {
              core.logger.warn('marking a result delivered failed', { intentId: intent.id, error });
              return undefined;
            },
          )
        : undefined;
    return { kind: 'result', result, intent: delivered ?? completed ?? intent };
  }

  const message = failure ?? 'the tool returned nothing';
  core.logger.warn('paid tool failed; payment kept for a retry', {
    intentId: intent.id,
    tool: tool.name,
    error: message,
  });
  const released = await updateIntent(core.store, intent.id, (current) =>
    releaseRun(current, fence, message, Date.now()),
  );
  await publishQuietly(core, released ?? intent);
  await runHook(core, 'onToolRun', core.hooks.onToolRun, { ...eventOf(intent), ok: false, error: message });
  const refunded = core.settings.onToolError === 'refund' ? await refund(core, released ?? intent) : false;
  return {
    kind: 'tool_failed',
    message,
    ...(result === undefined ? {} : { result }),
    intent: released ?? intent,
    refunded,
  };
}

async function refund(core: RouterCore, intent: IntentRecord): Promise<boolean> {
  const attempt = intent.attempts.find((a) => a.status === 'paid') ?? intent.attempts.at(-1);
  const provider = attempt ? core.providerById.get(attempt.providerId) : undefined;
  if (!attempt || !provider?.refundPayment) return false;
  try {
    await refundAttempt(core, intent.id, attempt);
    return true;
  } catch (error) {
    core.logger.error('refund after tool failure failed', { intentId: intent.id, error });
    return false;
  }
}

function eventOf(intent: IntentRecord) {
  return {
    intentId: intent.id,
    tool: intent.binding.tool,
    subject: intent.binding.subject,
    amount: intentMoney(intent),
    providerId: paidProvider(intent),
  };
}

function paidProvider(intent: IntentRecord): string {
  return (
    intent.attempts.find((a) => a.status === 'paid')?.providerId ?? intent.attempts.at(-1)?.providerId ?? ''
  );
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

/**
 * The lease is how another instance takes over from a crashed one, not a limit on how long a tool
 * may run: while the handler works, renew it every third of leaseMs, so it lapses only when this
 * process is gone.
 */
function renewWhileRunning(core: RouterCore, intentId: string, fence: number): () => void {
  const leaseMs = core.settings.leaseMs;
  const timer = setInterval(
    () => {
      updateIntent(core.store, intentId, (current) => renewLease(current, fence, Date.now(), leaseMs)).catch(
        (error: unknown) => core.logger.warn('renewing a run lease failed', { intentId, error }),
      );
    },
    Math.max(1, Math.floor(leaseMs / 3)),
  );
  timer.unref();
  return () => clearInterval(timer);
}

/** Resolve when the store reports a change of this intent, after `ms`, or on abort. */
function waitForChange(core: RouterCore, intentId: string, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
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
