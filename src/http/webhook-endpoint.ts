import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PaymentDesk } from '../engine/desk.js';
import { readRawBody, WEBHOOK_BODY_LIMIT } from './body.js';
import { sendJson } from './html.js';

/**
 * `POST {base}/webhooks/:providerId`: the raw body goes to the desk, which verifies it with the
 * provider's own parser, applies it forward-only and deduplicates it by event id. Only a stored
 * outcome is acknowledged: when applying fails the answer is 500 and the provider retries.
 */

const ALREADY_PARSED =
  'The request body was already parsed (e.g. by express.json()), so the webhook signature cannot be verified. ' +
  'Mount router.httpHandler() before any body parser.';

export async function handleWebhook(
  desk: PaymentDesk,
  providerId: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: 'Webhooks are POST requests' }, { allow: 'POST' });
    return;
  }
  if (!desk.acceptsWebhooks(providerId)) {
    sendJson(res, 404, { error: 'No webhook endpoint for this provider' });
    return;
  }

  const body = await readRawBody(req, WEBHOOK_BODY_LIMIT);
  if (body.kind === 'too_large') {
    sendJson(res, 413, { error: 'Webhook body too large' });
    return;
  }
  if (body.kind === 'parsed') {
    sendJson(res, 400, { error: ALREADY_PARSED });
    return;
  }
  if (body.kind === 'failed') {
    sendJson(res, 400, { error: 'The webhook body could not be read' });
    return;
  }

  const outcome = await desk.applyWebhook(providerId, body.bytes, req.headers);
  switch (outcome.kind) {
    case 'no_endpoint':
      sendJson(res, 404, { error: 'No webhook endpoint for this provider' });
      return;
    case 'rejected':
      sendJson(res, 400, { error: outcome.reason });
      return;
    case 'failed':
      sendJson(res, 500, { error: 'The event could not be recorded; retry later' });
      return;
    case 'applied':
      sendJson(res, 200, outcome.duplicate ? { received: true, duplicate: true } : { received: true });
      return;
    case 'ignored':
    case 'unknown_payment':
      sendJson(res, 200, { received: true });
      return;
  }
}
