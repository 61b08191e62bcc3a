import type { IncomingMessage, ServerResponse } from 'node:http';
import { WebhookError } from '../core/errors.js';
import { looksLikeIntentId } from '../core/ids.js';
import type { IntentRecord } from '../core/intent/record.js';
import type { ProviderWebhookEvent } from '../core/provider.js';
import type { RouterCore } from '../engine/runtime.js';
import { readRawBody, WEBHOOK_BODY_LIMIT } from './body.js';
import { sendJson } from './html.js';

/**
 * `POST {base}/webhooks/:providerId`: verify with the provider's own parser on the raw body, then
 * apply the status forward-only. Providers deliver duplicates and out of order, so every event is
 * deduplicated by id and a stale state never overwrites a newer one. Only a stored outcome is
 * acknowledged: when applying fails the answer is 500 and the provider retries.
 */

/** Longer than any provider's retry window (Stripe retries live events for 3 days). */
const EVENT_DEDUP_TTL_MS = 7 * 24 * 60 * 60 * 1000;

const ALREADY_PARSED =
  'The request body was already parsed (e.g. by express.json()), so the webhook signature cannot be verified. ' +
  'Mount router.httpHandler() before any body parser.';

export async function handleWebhook(
  core: RouterCore,
  providerId: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: 'Webhooks are POST requests' }, { allow: 'POST' });
    return;
  }
  const provider = core.providerById.get(providerId);
  if (provider?.parseWebhook === undefined) {
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

  let event: ProviderWebhookEvent | null;
  try {
    event = await provider.parseWebhook(body.bytes, req.headers);
  } catch (error) {
    if (error instanceof WebhookError) {
      core.logger.warn('webhook rejected', { providerId, reason: error.message });
      sendJson(res, 400, { error: error.message });
      return;
    }
    throw error;
  }
  if (event === null) {
    sendJson(res, 200, { received: true });
    return;
  }

  const intent = await findIntent(core, providerId, event);
  if (intent === undefined) {
    core.logger.warn('webhook for a payment this router does not know', {
      providerId,
      eventId: event.eventId,
      type: event.type,
      paymentId: event.paymentId,
    });
    sendJson(res, 200, { received: true });
    return;
  }

  try {
    await core.confirmation.applyProviderState(intent.id, providerId, {
      paymentId: event.paymentId,
      status: event.status,
      rawStatus: event.rawStatus,
      ...(event.paid === undefined ? {} : { paid: event.paid }),
    });
  } catch (error) {
    core.logger.error('applying a webhook failed; the provider will retry', {
      providerId,
      eventId: event.eventId,
      intentId: intent.id,
      error,
    });
    sendJson(res, 500, { error: 'The event could not be recorded; retry later' });
    return;
  }
  // Marked after the apply: a failed apply must stay retryable. A repeat applies the same state
  // again, which forward-only application makes a no-op.
  const first = await core.store.markEvent(`${providerId}:${event.eventId}`, EVENT_DEDUP_TTL_MS);
  if (!first) {
    core.logger.debug('duplicate webhook', { providerId, eventId: event.eventId, intentId: intent.id });
    sendJson(res, 200, { received: true, duplicate: true });
    return;
  }
  core.logger.info('webhook applied', {
    providerId,
    eventId: event.eventId,
    type: event.type,
    intentId: intent.id,
    status: event.status,
  });
  sendJson(res, 200, { received: true });
}

/** The intent named in the event's metadata if it owns the payment, else the owner by payment id. */
async function findIntent(
  core: RouterCore,
  providerId: string,
  event: ProviderWebhookEvent,
): Promise<IntentRecord | undefined> {
  if (event.intentId !== undefined && looksLikeIntentId(event.intentId)) {
    const named = await core.store.get(event.intentId);
    const owns = named?.attempts.some((a) => a.providerId === providerId && a.paymentId === event.paymentId);
    if (named !== undefined && owns === true) return named;
  }
  return core.store.findByPayment(providerId, event.paymentId);
}
