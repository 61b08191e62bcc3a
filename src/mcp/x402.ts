import type { IntentRecord } from '../core/intent/record.js';
import type { PresentedCredential } from '../engine/pipeline/context.js';
import { machineOffers } from '../engine/pipeline/credential.js';
import type { RouterCore } from '../engine/runtime.js';
import type { PaymentInfo, ResultJson } from './payment-result.js';

/**
 * The x402 MCP transport (x402 specs/transports-v2/mcp.md), written from the published spec:
 * the payment-required result carries the PaymentRequired object in `structuredContent` and, as
 * JSON, in `content[0].text`; the client retries with the PaymentPayload in
 * `params._meta["x402/payment"]`; the receipt comes back in `result._meta["x402/payment-response"]`.
 * No JSON-RPC error is used to signal it.
 */
export const X402_PAYMENT_META_KEY = 'x402/payment';
export const X402_PAYMENT_RESPONSE_META_KEY = 'x402/payment-response';
/** Where a tool with an `outputSchema` carries the PaymentRequired (its `structuredContent` must fit the schema). */
export const X402_PAYMENT_REQUIRED_META_KEY = 'x402/payment-required';

/** The credential a call carries, if any: `_meta["x402/payment"]` as sent (verified later, against the intent). */
export function credentialOf(meta: Record<string, unknown> | undefined): PresentedCredential | undefined {
  const payload = meta?.[X402_PAYMENT_META_KEY];
  if (payload === undefined || payload === null) return undefined;
  return { scheme: 'x402', payload };
}

/** The x402 PaymentRequired for an intent's machine offers, or undefined when it has none. */
export function x402PaymentRequired(
  rt: RouterCore,
  intent: IntentRecord,
  error?: string,
): Record<string, unknown> | undefined {
  const accepts = machineOffers(rt, intent)
    .filter((o) => o.scheme === 'x402')
    .map((o) => o.requirements);
  if (accepts.length === 0) return undefined;
  return {
    x402Version: 2,
    ...(error === undefined ? {} : { error }),
    resource: {
      url: `mcp://tool/${intent.binding.tool}`,
      description: intent.description,
      mimeType: 'application/json',
    },
    accepts,
  };
}

/**
 * One payment-required result for a person and an agent at once: with machine offers,
 * `content[0].text` is the PaymentRequired JSON (x402 clients parse it), the human text follows,
 * and `structuredContent` is the PaymentRequired extended with our `payment` (or, for a tool
 * with an `outputSchema`, the PaymentRequired goes in `_meta`).
 */
export function withMachineOffers(
  result: ResultJson,
  required: Record<string, unknown> | undefined,
  info: PaymentInfo | undefined,
  hasOutputSchema: boolean,
): ResultJson {
  if (required === undefined) return result;
  const out: ResultJson = {
    ...result,
    content: [{ type: 'text', text: JSON.stringify(required) }, ...result.content],
  };
  if (hasOutputSchema) out._meta = { ...(result._meta ?? {}), [X402_PAYMENT_REQUIRED_META_KEY]: required };
  else out.structuredContent = { ...required, ...(info ? { payment: info } : {}) };
  return out;
}
