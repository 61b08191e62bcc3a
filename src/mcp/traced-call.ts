import type { IntentRecord } from '../core/intent/record.js';
import type { EligibleProvider } from '../core/route/route.js';
import type { CallContext, Choice, Interaction, PaymentLink } from '../engine/pipeline/context.js';
import type { Outcome } from '../engine/pipeline/outcome.js';
import type { RouterCore } from '../engine/runtime.js';
import { describeChoice } from '../engine/telemetry/steps.js';
import type { CallTrace, Telemetry } from '../engine/telemetry/telemetry.js';

/** The call's interaction, with the method choice as a child span of the call. */
class TracedInteraction implements Interaction {
  readonly #inner: Interaction;
  readonly #call: CallTrace;

  constructor(inner: Interaction, call: CallTrace) {
    this.#inner = inner;
    this.#call = call;
  }

  chooseMethod(
    ctx: CallContext,
    intent: IntentRecord,
    eligible: readonly EligibleProvider[],
  ): Promise<Choice> {
    return this.#call.step(
      'payrouter.choose',
      () => this.#inner.chooseMethod(ctx, intent, eligible),
      describeChoice,
    );
  }

  deliver(ctx: CallContext, intent: IntentRecord, link: PaymentLink) {
    return this.#inner.deliver(ctx, intent, link);
  }

  // A method, not a closure made per call; a no-op where the inner interaction has none.
  async completed(ctx: CallContext, link: PaymentLink): Promise<void> {
    await this.#inner.completed?.(ctx, link);
  }
}

/**
 * One paid call inside its span, continuing the client's trace from `_meta.traceparent` and
 * `tracestate`; the steps find the call by its `extra`. With telemetry off, or nothing recording
 * the span, the call runs as is.
 */
export function tracedCall(
  core: RouterCore,
  tool: string,
  ctx: CallContext,
  run: (ctx: CallContext) => Promise<Outcome>,
): Promise<Outcome> {
  const telemetry = core.telemetry;
  if (telemetry === undefined) return run(ctx);
  const key = ctx.extra;
  const call = telemetry.startCall(key, tool, (key as { _meta?: Record<string, unknown> })._meta);
  // Not an async function: an untraced call's outcome is handed on with no promise of its own.
  if (call === undefined) return run(ctx);
  return traced(telemetry, key, call, ctx, run);
}

async function traced(
  telemetry: Telemetry,
  key: object,
  call: CallTrace,
  ctx: CallContext,
  run: (ctx: CallContext) => Promise<Outcome>,
): Promise<Outcome> {
  let outcome: Outcome;
  try {
    outcome = await call.within(() =>
      run({ ...ctx, interaction: new TracedInteraction(ctx.interaction, call) }),
    );
  } catch (error) {
    telemetry.endCall(key, call, error);
    throw error;
  }
  const { span } = call;
  span.setAttribute(
    'payrouter.outcome',
    outcome.kind === 'refused' ? `refused:${outcome.reason}` : outcome.kind,
  );
  if ('intent' in outcome) {
    const { intent } = outcome;
    const free = intent.free === true;
    span.setAttribute('payrouter.amount', free ? 0 : intent.binding.amount);
    span.setAttribute('payrouter.currency', intent.binding.currency);
    const provider = free ? 'free' : intent.attempts.at(-1)?.providerId;
    if (provider !== undefined) span.setAttribute('payrouter.provider', provider);
    span.setAttribute('payrouter.status', intent.status);
  }
  if (outcome.kind === 'limited') span.setAttribute('payrouter.limit.kind', outcome.hit.kind);
  telemetry.endCall(key, call);
  return outcome;
}
