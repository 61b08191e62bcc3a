import { hash, randomFillSync } from 'node:crypto';

/**
 * Random bytes drawn from the CSPRNG in blocks and handed out once each (as `crypto.randomUUID`
 * does): one system call per 227 ids instead of one per id.
 */
const pool = Buffer.alloc(18 * 227);
let poolOffset = pool.length;

function randomBase64url(bytes: number): string {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const text = pool.toString('base64url', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return text;
}

/** Slot tags of the subjects seen last: a payer's calls ask for the same one again and again. */
const slots = new Map<string, string>();
const RECENT_SLOTS = 1024;

/**
 * A subject's slot tag: 4 hex digits of the hash of the subject. Every intent id of one subject
 * carries it, so a store can keep a subject's intents and limits together (Redis: one hash slot)
 * and still find an intent from its id alone.
 */
export function subjectSlot(subject: string): string {
  // A pooled payer is new on every request: its pool is what is hashed and kept.
  const key = subjectPool(subject) ?? subject;
  let slot = slots.get(key);
  if (slot === undefined) {
    slot = hash('sha256', key, 'hex').slice(0, 4);
    if (slots.size >= RECENT_SLOTS) slots.clear();
    slots.set(key, slot);
  }
  return slot;
}

const POOLED = 'request:';

/**
 * A stateless anonymous payer is a subject of its own per request (`request:<pool>/<id>`), so
 * its open payments are counted with its pool's (one per tool): the pool shares a slot and an
 * open count, and a store bounds it atomically as it bounds one subject. Undefined for every
 * other subject.
 */
export function subjectPool(subject: string): string | undefined {
  if (!subject.startsWith(POOLED)) return undefined;
  const slash = subject.lastIndexOf('/');
  return slash > POOLED.length ? subject.slice(0, slash) : undefined;
}

/** Where a subject's open payments are counted: its pool, or the subject itself. */
export function openScopeOf(subject: string): string {
  return subjectPool(subject) ?? subject;
}

/**
 * Intent ids travel in URLs and tool arguments: 144 random bits, so they cannot be guessed.
 * With a subject, the id starts with its slot tag: `pay_<slot><random>`.
 */
export function newIntentId(subject?: string): string {
  const random = randomBase64url(18);
  return subject === undefined ? joined('pay_', random) : joined('pay_', subjectSlot(subject), random);
}

export function newOpaqueId(prefix: string): string {
  return joined(prefix, '_', randomBase64url(12));
}

/**
 * One flat string. A template literal or `+` of 13 characters or more is a rope, a 32-byte node per
 * piece pointing at the pieces; an id or key that a record keeps for hours holds its rope as long.
 */
export function joined(...parts: ReadonlyArray<string | number>): string {
  return parts.join('');
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
