import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { clockControlSchema, faultControlSchema, readControlJson, sendJson } from './harness.js';
import type { StripeSandbox } from './stripe.js';
import { SESSION_ID_PATTERN } from './stripe-ids.js';
import { SandboxStateError } from './stripe-state.js';

/**
 * `/__test/*` controls of the Stripe stand-in, thin HTTP wrappers over the
 * programmatic StripeSandbox methods. Bodies are JSON, validated with zod; errors use Stripe's
 * error shape.
 */

const faultSchema = faultControlSchema.extend({ shouldRetry: z.boolean().optional() }).strict();
const clockSchema = clockControlSchema.strict();
const payAsyncSchema = z.strictObject({ outcome: z.enum(['succeeded', 'failed']).optional() });
const webhookTargetSchema = z.strictObject({
  url: z.union([z.url({ protocol: /^https?$/ }), z.null()]),
  secret: z.string().min(1).optional(),
  duplicate: z.boolean().optional(),
  reorder: z.boolean().optional(),
});
const emptySchema = z.strictObject({});

export async function handleStripeControl(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  sandbox: StripeSandbox,
): Promise<void> {
  if (req.method === 'GET' && path === '/__test/requests') {
    sendJson(res, 200, { requests: sandbox.requests.entries });
    return;
  }
  if (req.method === 'GET' && path === '/__test/webhooks') {
    sendJson(res, 200, { events: sandbox.webhookEvents, deliveries: sandbox.webhookDeliveries });
    return;
  }
  if (req.method !== 'POST') {
    controlError(res, 405, 'Control endpoints take POST (except GET /__test/requests and /__test/webhooks).');
    return;
  }
  const body = await readControlJson(req);
  if (body === undefined) {
    controlError(res, 400, 'Control body must be valid JSON.');
    return;
  }
  const json = body.json;
  const parse = <T>(schema: z.ZodType<T>): T | undefined => {
    const input = schema.safeParse(json);
    if (input.success) return input.data;
    controlError(res, 400, `Invalid control body: ${z.prettifyError(input.error)}`);
    return undefined;
  };

  if (path === '/__test/reset') {
    if (parse(emptySchema) === undefined) return;
    sandbox.reset();
    sendJson(res, 200, { ok: true });
    return;
  }
  if (path === '/__test/clock') {
    const input = parse(clockSchema);
    if (input === undefined) return;
    sandbox.clock.advance(input.advanceSeconds);
    sendJson(res, 200, { now: sandbox.clock.nowSeconds() });
    return;
  }
  if (path === '/__test/fail-next') {
    const input = parse(faultSchema);
    if (input === undefined) return;
    sandbox.fail(input);
    sendJson(res, 200, { ok: true });
    return;
  }
  if (path === '/__test/webhooks') {
    const input = parse(webhookTargetSchema);
    if (input === undefined) return;
    const { url, ...rest } = input;
    sandbox.setWebhookTarget(url === null ? undefined : { url, ...rest });
    sendJson(res, 200, { ok: true });
    return;
  }
  const match = /^\/__test\/sessions\/([^/]+)\/(pay|pay_async|lapse)$/.exec(path);
  if (match !== null) {
    const id = match[1] as string;
    if (!SESSION_ID_PATTERN.test(id)) {
      controlError(res, 404, `No such checkout.session: '${id.slice(0, 200)}'`, 'resource_missing');
      return;
    }
    const action = match[2];
    const outcome = action === 'pay_async' ? parse(payAsyncSchema) : parse(emptySchema);
    if (outcome === undefined) return;
    try {
      const session =
        action === 'pay'
          ? sandbox.pay(id)
          : action === 'lapse'
            ? sandbox.lapse(id)
            : sandbox.payAsync(id, 'outcome' in outcome ? outcome.outcome : undefined);
      sendJson(res, 200, session);
    } catch (error) {
      if (!(error instanceof SandboxStateError)) throw error;
      controlError(res, error.status, error.message, error.stripeCode);
    }
    return;
  }
  controlError(res, 404, `Unknown control endpoint POST ${path.slice(0, 200)}`);
}

function controlError(res: ServerResponse, status: number, message: string, code?: string): void {
  sendJson(res, status, {
    error: { type: 'invalid_request_error', message, ...(code === undefined ? {} : { code }) },
  });
}
