import type { Money } from '../money/money.js';
import type { FeeModel } from '../provider.js';

/** The fee a provider takes on a charge, in the charge's minor units, rounded up (integer arithmetic only). */
export function feeFor(fee: FeeModel, charge: Money): number {
  const percent = (BigInt(charge.minor) * BigInt(fee.percentBps) + 9_999n) / 10_000n;
  return Number(percent) + fee.fixedMinor;
}
