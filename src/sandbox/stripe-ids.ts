import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A Stripe-looking id: prefix plus random letters and digits (`cs_test_a1B2…`, `pi_…`, `req_…`). */
export function stripeId(prefix: string, length = 24): string {
  const bytes = randomBytes(length);
  let out = prefix;
  // 62 does not divide 256; the slight bias is irrelevant for ids that only need to be unique.
  for (const byte of bytes) out += ALPHABET[byte % ALPHABET.length];
  return out;
}

/** Shape of the ids the stand-in hands out, checked before any lookup or page render. */
export const SESSION_ID_PATTERN = /^cs_(test|live)_[A-Za-z0-9]{1,100}$/;
