import type { Money } from '../money/money.js';
import type { PaymentProvider } from '../provider.js';
import { feeFor } from './fees.js';

/** What the connected client can show. */
export interface ClientSupport {
  /** Form-mode elicitation: the user can be asked to choose a method. */
  form: boolean;
  /** URL-mode elicitation: the client opens a link for the user. */
  url: boolean;
}

/**
 * `user_choice` (default): several eligible methods are offered to the user when the client can ask;
 *   otherwise the cheapest is taken and the others are listed as alternatives.
 * `lowest_fee`: always take the cheapest for this amount, list the others.
 * `first`: always take the first eligible in configuration order.
 */
export type RoutingPolicy = 'user_choice' | 'lowest_fee' | 'first';

export interface RoutingInput {
  charge: Money;
  /** Configured providers, in configuration order. */
  providers: readonly PaymentProvider[];
  /** The tool's own provider list, if it has one. */
  toolProviders?: readonly string[] | undefined;
  /** The subject's remembered method. */
  remembered?: string | undefined;
  client: ClientSupport;
  policy?: RoutingPolicy;
}

export interface Exclusion {
  providerId: string;
  reason: string;
}

export interface EligibleProvider {
  providerId: string;
  label: string;
  /** Fee for this charge in its minor units. */
  feeMinor: number;
  feeLabel: string;
  instant: boolean;
}

export type RouteAction =
  /** Nobody can take this charge; nothing is charged. */
  | { kind: 'none'; message: string }
  /** Go straight on with this provider. */
  | { kind: 'use'; providerId: string; why: string; basis: 'only' | 'remembered' | 'policy' }
  /** Ask the user to pick among `eligible`. */
  | { kind: 'ask' };

export interface RouteDecision {
  /** Providers that can take the charge, best first. */
  eligible: EligibleProvider[];
  /** Every configured provider that cannot, with the reason. */
  excluded: Exclusion[];
  action: RouteAction;
}

/**
 * The routing decision for one charge. Pure: no I/O, same input, same answer, so it can be
 * explained (`router.explain`) and tested exhaustively.
 */
export function routeCharge(input: RoutingInput): RouteDecision {
  const policy = input.policy ?? 'user_choice';
  const excluded: Exclusion[] = [];
  const candidates: Array<EligibleProvider & { order: number }> = [];
  const override = input.toolProviders === undefined ? undefined : new Set(input.toolProviders);

  input.providers.forEach((provider, order) => {
    if (override !== undefined && !override.has(provider.id)) {
      excluded.push({ providerId: provider.id, reason: 'not in this tool’s provider list' });
      return;
    }
    const refusal = provider.refuseCharge(input.charge);
    if (refusal !== undefined) {
      excluded.push({ providerId: provider.id, reason: refusal });
      return;
    }
    const caps = provider.capabilities;
    candidates.push({
      providerId: provider.id,
      label: caps.label,
      feeMinor: feeFor(caps.fee, input.charge),
      feeLabel: caps.fee.label,
      instant: caps.instant,
      order,
    });
  });

  if (policy !== 'first') {
    candidates.sort(
      (a, b) => a.feeMinor - b.feeMinor || Number(b.instant) - Number(a.instant) || a.order - b.order,
    );
  }
  const remembered = candidates.find((c) => c.providerId === input.remembered);
  if (remembered) {
    candidates.splice(candidates.indexOf(remembered), 1);
    candidates.unshift(remembered);
  }
  const eligible = candidates.map(({ order: _order, ...rest }) => rest);

  return { eligible, excluded, action: decide(eligible, excluded, input, policy, remembered !== undefined) };
}

function decide(
  eligible: EligibleProvider[],
  excluded: Exclusion[],
  input: RoutingInput,
  policy: RoutingPolicy,
  fromMemory: boolean,
): RouteAction {
  const first = eligible[0];
  if (first === undefined) {
    const reasons = excluded.map((e) => `${e.providerId}: ${e.reason}`).join('; ');
    return {
      kind: 'none',
      message: `No configured payment method can take this charge (${reasons || 'no providers'}).`,
    };
  }
  if (eligible.length === 1) {
    return {
      kind: 'use',
      providerId: first.providerId,
      why: 'the only method that can take this charge',
      basis: 'only',
    };
  }
  if (fromMemory) {
    return {
      kind: 'use',
      providerId: first.providerId,
      why: 'the method you chose to remember',
      basis: 'remembered',
    };
  }
  if (policy === 'user_choice' && input.client.form) return { kind: 'ask' };
  const why =
    policy === 'first'
      ? 'first configured method'
      : input.client.form
        ? 'lowest fee for this amount'
        : 'lowest fee for this amount (this client cannot show a choice)';
  return { kind: 'use', providerId: first.providerId, why, basis: 'policy' };
}
