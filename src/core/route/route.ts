import type { Money } from '../money/money.js';
import type { PaymentProvider } from '../provider.js';
import { feeFor } from './fees.js';

/** What the connected client can show. */
export interface ClientSupport {
  /** Form-mode elicitation: the user can be asked to choose a method. */
  form: boolean;
  /** URL-mode elicitation: the client opens a link for the user. */
  url: boolean;
  /**
   * The client pays by itself with a machine credential (it has sent one on this connection or
   * for this subject): machine offers go first. x402 defines no capability declaration, so this
   * is learned, never declared.
   */
  machine?: boolean;
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
  /** The machine-credential protocol of an offer an agent pays by itself (`'x402'`); absent for human methods. */
  credential?: string;
}

export type RouteAction =
  /** Nobody can take this charge; nothing is charged. */
  | { kind: 'none'; message: string }
  /** Go straight on with this provider. */
  | {
      kind: 'use';
      providerId: string;
      why: string;
      basis: 'only' | 'remembered' | 'policy' | 'machine';
    }
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
      ...(caps.credential === undefined ? {} : { credential: caps.credential }),
      order,
    });
  });

  if (policy !== 'first') {
    candidates.sort(
      (a, b) => a.feeMinor - b.feeMinor || Number(b.instant) - Number(a.instant) || a.order - b.order,
    );
  }
  // Machine offers go after the human methods for a person, before them for an agent that pays by
  // itself; the order within each group is the policy's.
  // Known to pay by itself: on this connection (client.machine) or as this subject (its remembered
  // method is a machine offer, set when it last paid with a credential).
  const machineFirst =
    input.client.machine === true ||
    candidates.some((c) => c.providerId === input.remembered && c.credential !== undefined);
  const group = (c: { credential?: string }) => (c.credential === undefined ? 0 : 1);
  candidates.sort((a, b) => (machineFirst ? group(b) - group(a) : group(a) - group(b)));
  const remembered = candidates.find((c) => c.providerId === input.remembered);
  if (remembered) {
    candidates.splice(candidates.indexOf(remembered), 1);
    candidates.unshift(remembered);
  }
  const eligible = candidates.map(({ order: _order, ...rest }) => rest);

  return {
    eligible,
    excluded,
    action: decide(eligible, excluded, input, policy, remembered !== undefined, machineFirst),
  };
}

function decide(
  eligible: EligibleProvider[],
  excluded: Exclusion[],
  input: RoutingInput,
  policy: RoutingPolicy,
  fromMemory: boolean,
  machineFirst: boolean,
): RouteAction {
  if (eligible[0] === undefined) {
    const reasons = excluded.map((e) => `${e.providerId}: ${e.reason}`).join('; ');
    return {
      kind: 'none',
      message: `No configured payment method can take this charge (${reasons || 'no providers'}).`,
    };
  }
  const machine = eligible.find((e) => e.credential !== undefined);
  if (machineFirst && machine !== undefined) {
    return {
      kind: 'use',
      providerId: machine.providerId,
      why: 'this client pays by itself with a machine credential',
      basis: 'machine',
    };
  }
  // A person is asked, or routed, among the methods a person can use; machine offers still go out
  // in the payment-required result beside them.
  const human = eligible.filter((e) => e.credential === undefined);
  const pool = human.length > 0 ? human : eligible;
  const first = pool[0]!;
  if (pool.length === 1) {
    return {
      kind: 'use',
      providerId: first.providerId,
      why: 'the only method that can take this charge',
      basis: 'only',
    };
  }
  if (fromMemory && first.providerId === input.remembered) {
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
