import { createHash, randomBytes } from 'node:crypto';

/**
 * A subject's slot tag: 4 hex digits of the hash of the subject. Every intent id of one subject
 * carries it, so a store can keep a subject's intents and limits together (Redis: one hash slot)
 * and still find an intent from its id alone.
 */
export function subjectSlot(subject: string): string {
  return createHash('sha256').update(subject).digest('hex').slice(0, 4);
}

/**
 * Intent ids travel in URLs and tool arguments: 144 random bits, so they cannot be guessed.
 * With a subject, the id starts with its slot tag: `pay_<slot><random>`.
 */
export function newIntentId(subject?: string): string {
  const random = randomBytes(18).toString('base64url');
  return subject === undefined ? `pay_${random}` : `pay_${subjectSlot(subject)}${random}`;
}

export function newOpaqueId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

/** `pay_` and 24 random characters (ids before slot tags), or `pay_`, a slot tag and 24. */
const INTENT_ID = /^pay_(?:[0-9a-f]{4})?[A-Za-z0-9_-]{24}$/;
const SLOTTED_INTENT_ID = /^pay_([0-9a-f]{4})[A-Za-z0-9_-]{24}$/;

/** Cheap shape check before any store lookup, so junk never reaches the store. */
export function looksLikeIntentId(value: string): boolean {
  return INTENT_ID.test(value);
}

/** The slot tag an intent id carries, or undefined for an id without one (older ids, foreign ids). */
export function slotOfIntentId(id: string): string | undefined {
  return SLOTTED_INTENT_ID.exec(id)?.[1];
}
