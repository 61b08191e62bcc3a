import type { IntentRecord } from '../core/intent/record.js';
import { liveAttempt } from '../core/intent/transitions.js';
import { payPageUrl } from './desk.js';
import type { RouterCore } from './runtime.js';

/** Another method the payer may switch to, described by kind and speed. */
export interface MethodOffer {
  provider: string;
  label: string;
  /** "instant" or "opens a checkout page". */
  speed: string;
}

/** The link a payer opens: the hosted pay page when the server has one, else the provider's checkout. */
export function linkFor(rt: RouterCore, intent: IntentRecord): string {
  if (rt.settings.publicUrl) return `${rt.settings.publicUrl}/pay/${intent.id}`;
  return liveAttempt(intent)?.url ?? '';
}

/**
 * The link handed over once the payer's method is settled (a choice in the chat, the only method):
 * the hosted pay page's link that goes straight to that provider's checkout.
 */
export function deliveryLinkFor(rt: RouterCore, intent: IntentRecord): string {
  const publicUrl = rt.settings.publicUrl;
  if (!publicUrl) return linkFor(rt, intent);
  return payPageUrl(publicUrl, intent.id, liveAttempt(intent)?.providerId);
}

/** The human name of the method the intent is being paid with. */
export function methodLabel(rt: RouterCore, intent: IntentRecord): string {
  const attempt = liveAttempt(intent);
  if (!attempt) return 'a payment method of your choice';
  return rt.providerById.get(attempt.providerId)?.capabilities.label ?? attempt.providerId;
}

/** The eligible methods other than the live one. */
export function alternativesFor(rt: RouterCore, intent: IntentRecord): MethodOffer[] {
  const current = liveAttempt(intent)?.providerId;
  const offers: MethodOffer[] = [];
  for (const id of intent.eligible) {
    if (id === current) continue;
    const provider = rt.providerById.get(id);
    if (!provider) continue;
    const caps = provider.capabilities;
    const speed =
      caps.credential !== undefined
        ? `paid by an agent with ${caps.credential}`
        : caps.instant
          ? 'instant'
          : 'opens a checkout page';
    offers.push({ provider: id, label: caps.label, speed });
  }
  return offers;
}
