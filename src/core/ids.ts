import { randomBytes } from 'node:crypto';

/** Intent ids travel in URLs and tool arguments: 144 random bits, so they cannot be guessed. */
export function newIntentId(): string {
  return `pay_${randomBytes(18).toString('base64url')}`;
}

export function newOpaqueId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

const INTENT_ID = /^pay_[A-Za-z0-9_-]{24}$/;

/** Cheap shape check before any store lookup, so junk never reaches the store. */
export function looksLikeIntentId(value: string): boolean {
  return INTENT_ID.test(value);
}
