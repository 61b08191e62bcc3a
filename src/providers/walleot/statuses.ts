import type { PaymentStatus } from '../../core/intent/status.js';

/** Walleot's documented session statuses, one to one; `cancelled` is spelt the British way. */
const STATUS_MAP: Readonly<Record<string, PaymentStatus>> = {
  pending: 'pending',
  paid: 'paid',
  failed: 'failed',
  expired: 'expired',
  cancelled: 'canceled',
};

/** The intent status of a Walleot session status; anything undocumented is `unknown`. */
export function mapWalleotStatus(rawStatus: string): PaymentStatus {
  return Object.hasOwn(STATUS_MAP, rawStatus) ? STATUS_MAP[rawStatus]! : 'unknown';
}
