import type { Span } from '@opentelemetry/api';
import type { IntentRecord, ToolResult } from '../../core/intent/record.js';
import type { RouteDecision } from '../../core/route/route.js';
import type { Confirmation } from '../confirmation/confirmation-layer.js';
import type { Choice } from '../pipeline/context.js';

// What each step's span says about its result. Module-level functions: a traced step allocates
// no closure of its own to describe itself.

export function describeRoute(span: Span, decision: RouteDecision): void {
  span.setAttribute('payrouter.eligible', decision.eligible.map((e) => e.providerId).join(','));
}

export function describeChoice(span: Span, choice: Choice): void {
  span.setAttribute('payrouter.choice', choice.kind === 'chosen' ? choice.providerId : choice.kind);
}

export function describeWait(span: Span, waited: Confirmation | undefined): void {
  span.setAttribute('payrouter.status', waited?.intent.status ?? 'unknown');
}

/** On the call's own span (a call whose only step is the run) the outcome is `payrouter.run.outcome`. */
export function describeRun(span: Span, result: ToolResult, onCall: boolean): void {
  span.setAttribute(
    onCall ? 'payrouter.run.outcome' : 'payrouter.outcome',
    result.isError === true ? 'tool_error' : 'ok',
  );
}

/** The create span's attributes: what is charged, never the arguments. */
export function createAttributes(intent: IntentRecord, providerId: string) {
  return {
    'payrouter.provider': providerId,
    'payrouter.tool': intent.binding.tool,
    'payrouter.amount': intent.binding.amount,
    'payrouter.currency': intent.binding.currency,
  };
}
