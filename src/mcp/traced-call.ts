import type { CallContext, Interaction } from '../engine/pipeline/context.js';
import type { Outcome } from '../engine/pipeline/outcome.js';
import type { RouterCore } from '../engine/runtime.js';

/**
 * One paid call inside its span, continuing the client's trace from `_meta.traceparent` and
 * `tracestate`; the method choice gets a child span. With telemetry off, the call runs as is.
 */
export async function tracedCall(
  core: RouterCore,
  tool: string,
  ctx: CallContext,
  run: (ctx: CallContext) => Promise<Outcome>,
): Promise<Outcome> {
  const telemetry = core.telemetry;
  if (telemetry === undefined) return run(ctx);
  const meta = (ctx.extra as { _meta?: Record<string, unknown> })._meta;
  const span = telemetry.startCall('payrouter.paid_call', { 'payrouter.tool': tool }, meta);
  if (span === undefined) return run(ctx);
  return telemetry.within(span, async () => {
    const inner = ctx.interaction;
    const interaction: Interaction = {
      ...inner,
      chooseMethod: (c, intent, eligible) =>
        telemetry.step('payrouter.choose', { 'payrouter.tool': tool }, async (s) => {
          const choice = await inner.chooseMethod(c, intent, eligible);
          s?.setAttribute('payrouter.choice', choice.kind === 'chosen' ? choice.providerId : choice.kind);
          return choice;
        }),
      deliver: (c, intent, link) => inner.deliver(c, intent, link),
      ...(inner.completed
        ? {
            completed: (c: CallContext, link: Parameters<NonNullable<Interaction['completed']>>[1]) =>
              inner.completed!(c, link),
          }
        : {}),
    };
    const outcome = await run({ ...ctx, interaction });
    span.setAttribute(
      'payrouter.outcome',
      outcome.kind === 'refused' ? `refused:${outcome.reason}` : outcome.kind,
    );
    if ('intent' in outcome) {
      const { intent } = outcome;
      span.setAttribute('payrouter.amount', intent.free === true ? 0 : intent.binding.amount);
      span.setAttribute('payrouter.currency', intent.binding.currency);
      const provider = intent.free === true ? 'free' : intent.attempts.at(-1)?.providerId;
      if (provider) span.setAttribute('payrouter.provider', provider);
      span.setAttribute('payrouter.status', intent.status);
    }
    if (outcome.kind === 'limited') span.setAttribute('payrouter.limit.kind', outcome.hit.kind);
    return outcome;
  });
}
