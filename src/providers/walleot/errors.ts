import { z } from 'zod';
import type { ProviderErrorCode } from '../../core/errors.js';

/** Walleot's error shape and HTTP codes in payrouter's terms. */

/**
 * Failures before the server could have seen the request, so even a create may be repeated.
 * A reset before any answer is counted here too: at worst it leaves an unpaid, never-delivered
 * session behind (only the link we record is ever shown), never a charge.
 */
export const NOT_PROCESSED_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

const errorBodySchema = z.object({
  error: z.object({ type: z.string().optional(), message: z.string().optional() }),
});

/** `type: message` of a `{ error: { type, message } }` body, or '' when the body is not that shape. */
export function walleotErrorDetail(text: string): string {
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(text));
    if (!parsed.success) return '';
    const { type, message } = parsed.data.error;
    return [type, message].filter(Boolean).join(': ');
  } catch {
    return ''; // not JSON: the status alone says enough
  }
}

export function codeForStatus(status: number): ProviderErrorCode {
  if (status === 401 || status === 403) return 'auth_failed';
  if (status === 404) return 'not_found';
  if (status === 408) return 'timeout';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'provider_unavailable';
  if (status >= 400) return 'invalid_request';
  return 'malformed_response'; // 1xx/3xx: nothing we can use
}

/** The first error code found on the error or its causes (undici wraps socket errors). */
export function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR_ABORTED') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
