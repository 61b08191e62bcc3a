import { createHmac } from 'node:crypto';
import type Stripe from 'stripe';
import type { SandboxClock } from './harness.js';
import { stripeId } from './stripe-ids.js';
import type { CheckoutEventType, EventCause } from './stripe-state.js';

/**
 * Stripe webhook events of the stand-in, shaped as Stripe sends them: the full event envelope with the
 * session as `data.object`, POSTed with `Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")`.
 * Events raised together (one action, e.g. completed + async_payment_succeeded) go out as one
 * batch, optionally in reverse order and/or each twice, because Stripe does both. Failures are
 * recorded, never thrown.
 */

export type CheckoutSessionEvent =
  | Stripe.CheckoutSessionCompletedEvent
  | Stripe.CheckoutSessionAsyncPaymentSucceededEvent
  | Stripe.CheckoutSessionAsyncPaymentFailedEvent
  | Stripe.CheckoutSessionExpiredEvent;

export interface WebhookTarget {
  url: string;
  /** Signing secret for this endpoint (default: the sandbox's `webhookSecret`). */
  secret?: string;
  /** Deliver every event twice. */
  duplicate?: boolean;
  /** Deliver each batch of events raised together in reverse order. */
  reorder?: boolean;
}

export interface WebhookDelivery {
  eventId: string;
  type: string;
  /** HTTP status the endpoint answered, or 0 when there was no answer. */
  status: number;
  error?: string;
}

/** Stripe API version stamped on events (the one stripe@23.1.0 pins). */
export const SANDBOX_API_VERSION = '2026-10-28.endive';

const DELIVERY_TIMEOUT_MS = 10_000;

/** The `Stripe-Signature` header value for `payload`, as Stripe computes it. */
export function signStripePayload(payload: string, secret: string, timestampSeconds: number): string {
  const v1 = createHmac('sha256', secret).update(`${timestampSeconds}.${payload}`, 'utf8').digest('hex');
  return `t=${timestampSeconds},v1=${v1}`;
}

interface Queued {
  event: CheckoutSessionEvent;
  target: WebhookTarget;
}

export class StripeWebhookSender {
  /** Every event raised, delivered or not, oldest first. */
  readonly events: CheckoutSessionEvent[] = [];
  readonly deliveries: WebhookDelivery[] = [];
  private target: WebhookTarget | undefined;
  private queue: Queued[] = [];
  private draining: Promise<void> | undefined;
  private aborter = new AbortController();

  constructor(
    private readonly clock: SandboxClock,
    private readonly defaultSecret: string,
  ) {}

  setTarget(target: WebhookTarget | undefined): void {
    this.target = target === undefined ? undefined : { ...target };
  }

  publish(type: CheckoutEventType, session: Stripe.Checkout.Session, cause?: EventCause): void {
    const event = this.buildEvent(type, session, cause);
    this.events.push(event);
    if (this.target === undefined) return;
    this.queue.push({ event, target: this.target });
    this.schedule();
  }

  /** Resolves once every queued delivery has been attempted. */
  async flush(): Promise<void> {
    while (this.draining !== undefined) await this.draining;
  }

  /** Forget events, deliveries and queued work; the target stays unless `dropTarget`. */
  clear(dropTarget: boolean): void {
    this.events.length = 0;
    this.deliveries.length = 0;
    this.queue = [];
    if (dropTarget) this.target = undefined;
  }

  /** Abort deliveries in progress and wait for the queue to settle (used by close()). */
  async abortAll(): Promise<void> {
    this.queue = [];
    this.aborter.abort();
    await this.flush();
    this.aborter = new AbortController();
  }

  private schedule(): void {
    if (this.draining !== undefined) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.queue.length > 0) this.schedule();
    });
  }

  private async drain(): Promise<void> {
    // Let every event of the current action join the batch before sending.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      if (batch.some((q) => q.target.reorder)) batch.reverse();
      for (const item of batch) {
        await this.deliver(item);
        if (item.target.duplicate) await this.deliver(item);
      }
    }
  }

  private async deliver({ event, target }: Queued): Promise<void> {
    const payload = JSON.stringify(event, null, 2);
    const signature = signStripePayload(
      payload,
      target.secret ?? this.defaultSecret,
      this.clock.nowSeconds(),
    );
    const record: WebhookDelivery = { eventId: event.id, type: event.type, status: 0 };
    try {
      const response = await fetch(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'stripe-signature': signature,
          'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
        },
        body: payload,
        signal: AbortSignal.any([this.aborter.signal, AbortSignal.timeout(DELIVERY_TIMEOUT_MS)]),
      });
      record.status = response.status;
      await response.body?.cancel();
    } catch (error) {
      record.error = error instanceof Error ? error.message : String(error);
    }
    this.deliveries.push(record);
  }

  private buildEvent(
    type: CheckoutEventType,
    session: Stripe.Checkout.Session,
    cause: EventCause | undefined,
  ): CheckoutSessionEvent {
    const base = {
      id: stripeId('evt_'),
      object: 'event' as const,
      api_version: SANDBOX_API_VERSION,
      created: this.clock.nowSeconds(),
      livemode: false,
      pending_webhooks: this.target === undefined ? 0 : 1,
      request:
        cause === undefined
          ? { id: null, idempotency_key: null }
          : { id: cause.requestId, idempotency_key: cause.idempotencyKey },
    };
    const data = { object: session };
    switch (type) {
      case 'checkout.session.completed':
        return { ...base, type, data };
      case 'checkout.session.async_payment_succeeded':
        return { ...base, type, data };
      case 'checkout.session.async_payment_failed':
        return { ...base, type, data };
      case 'checkout.session.expired':
        return { ...base, type, data };
    }
  }
}
