import { z } from 'zod';
import { ConfigError, MoneyError } from '../../core/errors.js';
import { openScopeOf } from '../../core/ids.js';
import type { Money } from '../../core/money/money.js';
import { parseMoney } from '../../core/money/money.js';
import type { PaymentStore, UsageCounter, UsageStore } from '../../store/types.js';
import { isUsageStore } from '../../store/types.js';

const positiveInt = z.number().int().positive();

/** `day` and `month` are calendar periods in UTC; `{ rollingMs }` is the window before each call. */
export const periodSchema = z.union([
  z.enum(['day', 'month']),
  z.object({ rollingMs: positiveInt }).strict(),
]);
export type Period = z.infer<typeof periodSchema>;

const scopeSchema = z.enum(['subject', 'global']).optional();

/** Declarative caps, quotas and free allowances, for the router (`limits`) or one tool (`limits` in registerTool). */
export const usageLimitsShape = {
  /** Spend caps: at most `max` (a decimal, in `currency`) per period, per subject (default) or over all payers (`global`). */
  spend: z
    .array(
      z
        .object({
          max: z.union([z.string(), z.number()]),
          currency: z.string(),
          per: periodSchema,
          scope: scopeSchema,
        })
        .strict(),
    )
    .optional(),
  /** Call quotas: at most `max` calls (paid or free) per period, per subject (default) or global. */
  calls: z.array(z.object({ max: positiveInt, per: periodSchema, scope: scopeSchema }).strict()).optional(),
  /**
   * A free allowance: the first `calls` calls per subject per period run without payment. At the
   * router it is shared by every priced tool; a tool's own replaces it for that tool.
   */
  free: z.object({ calls: positiveInt, per: periodSchema }).strict().optional(),
};
export const toolLimitsSchema = z.object(usageLimitsShape).strict();
export type ToolLimits = z.input<typeof toolLimitsSchema>;

/** Which limit a call ran into. */
export interface LimitHit {
  kind: 'spend' | 'calls' | 'free';
  scope: 'subject' | 'global';
  /** Set when the limit is the tool's own. */
  tool?: string;
  /** Minor units for spend, calls otherwise. */
  limit: number;
  used: number;
  /** Spend caps only. */
  currency?: string;
  period: 'day' | 'month' | 'rolling';
  windowMs?: number;
  /** When budget frees (ms since epoch). */
  resetsAt: number;
}

interface SpendRule {
  max: Money;
  per: Period;
  scope: 'subject' | 'global';
}
interface CallRule {
  max: number;
  per: Period;
  scope: 'subject' | 'global';
}
export type ToolRules = Rules;
interface Rules {
  spend: SpendRule[];
  calls: CallRule[];
  free?: { calls: number; per: Period };
}

export type UsageLimitsInput = z.input<typeof toolLimitsSchema>;

/** Parse caps (decimal strings to minor units, never by float); a bad one names where it is. */
export function parseRules(where: string, input: UsageLimitsInput | undefined): Rules {
  const spend = (input?.spend ?? []).map((s, i) => {
    let max: Money;
    try {
      max = parseMoney(s.max, s.currency);
    } catch (error) {
      throw new ConfigError(
        `${where}: limits.spend[${i}].max: ${error instanceof MoneyError ? error.message : String(error)}`,
      );
    }
    return { max, per: s.per, scope: s.scope ?? 'subject' } satisfies SpendRule;
  });
  const calls = (input?.calls ?? []).map((c) => ({ max: c.max, per: c.per, scope: c.scope ?? 'subject' }));
  return { spend, calls, ...(input?.free ? { free: input.free } : {}) };
}

const DAY_MS = 24 * 60 * 60 * 1000;

function windowOf(per: Period, at: number): UsageCounter['window'] {
  if (typeof per === 'object') return { kind: 'rolling', ms: per.rollingMs };
  const d = new Date(at);
  if (per === 'day') {
    const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    return { kind: 'fixed', start, end: start + DAY_MS };
  }
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  return { kind: 'fixed', start, end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}

function periodName(per: Period): string {
  return typeof per === 'object' ? `r${per.rollingMs}` : per;
}

/** A counter plus what to tell the payer if it refuses. */
interface Planned {
  counter: UsageCounter;
  hit: Omit<LimitHit, 'used' | 'resetsAt'>;
}

/** What a tool contributes: its own rules. */
export interface ToolLimitsOf {
  name: string;
  limits?: Rules | undefined;
}

export type Admission =
  | { kind: 'admitted'; held: readonly ('subject' | 'global')[] }
  | { kind: 'limited'; hit: LimitHit };

/**
 * The router's limits: counters planned per call and reserved atomically in the store (the
 * subject's own slot, then the router-wide scope), given back once on a refund, cancel or unpaid end.
 */
export class UsageLimits {
  readonly #router: Rules;
  readonly #store: (PaymentStore & UsageStore) | undefined;
  readonly clock: () => number;

  constructor(store: PaymentStore, router: UsageLimitsInput | undefined, clock: (() => number) | undefined) {
    this.#router = parseRules('PayRouter options', router);
    this.#store = isUsageStore(store) ? store : undefined;
    this.clock = clock ?? Date.now;
    if (this.#store === undefined && hasRules(this.#router)) {
      throw new ConfigError(
        'PayRouter options: limits.spend, limits.calls and limits.free need a store with usage counters (memoryStore or redisStore)',
      );
    }
  }

  /** Fails at registration when a tool has limits and the store cannot count. */
  checkTool(name: string, rules: Rules | undefined): void {
    if (rules !== undefined && hasRules(rules) && this.#store === undefined) {
      throw new ConfigError(
        `Tool "${name}": limits need a store with usage counters (memoryStore or redisStore)`,
      );
    }
  }

  /** Whether any limit could apply to this tool (no store work at all otherwise). */
  applies(tool: ToolLimitsOf): boolean {
    return hasRules(this.#router) || (tool.limits !== undefined && hasRules(tool.limits));
  }

  /** Whether this tool has a free allowance (its own or the router's shared one). */
  hasFree(tool: ToolLimitsOf): boolean {
    return (tool.limits?.free ?? this.#router.free) !== undefined;
  }

  /** Take one free call for this id (with the call quotas); `undefined` when the allowance is used up. */
  async reserveFree(
    tool: ToolLimitsOf,
    subject: string,
    id: string,
    at: number,
  ): Promise<Admission | undefined> {
    const own = tool.limits?.free;
    const free = own ?? this.#router.free;
    if (free === undefined) return undefined;
    const key = own ? `tool:${tool.name}:free:${periodName(free.per)}` : `free:${periodName(free.per)}`;
    const freeCounter: Planned = {
      counter: { key, add: 1, limit: free.calls, window: windowOf(free.per, at) },
      hit: {
        kind: 'free',
        scope: 'subject',
        ...(own ? { tool: tool.name } : {}),
        limit: free.calls,
        ...periodOf(free.per),
      },
    };
    const admission = await this.#reserve(tool, usageScopeOf(subject), id, at, undefined, [freeCounter]);
    if (admission.kind === 'limited' && admission.hit.kind === 'free') return undefined;
    return admission;
  }

  /** Reserve the spend caps and call quotas of one paid call. */
  reservePaid(tool: ToolLimitsOf, subject: string, id: string, at: number, money: Money): Promise<Admission> {
    return this.#reserve(tool, usageScopeOf(subject), id, at, money, []);
  }

  /** Give back what `id` holds (refund, cancel, an unpaid end). Idempotent. */
  async release(subject: string, id: string): Promise<boolean> {
    if (this.#store === undefined) return false;
    const [own, global] = await Promise.all([
      this.#store.releaseUsage(usageScopeOf(subject), id),
      this.#store.releaseUsage('*', id),
    ]);
    return own || global;
  }

  async #reserve(
    tool: ToolLimitsOf,
    subject: string,
    id: string,
    at: number,
    money: Money | undefined,
    extra: Planned[],
  ): Promise<Admission> {
    const store = this.#store;
    if (store === undefined) return { kind: 'admitted', held: [] };
    const planned = [...extra, ...this.#plan(this.#router, undefined, at, money)];
    if (tool.limits) planned.push(...this.#plan(tool.limits, tool.name, at, money));
    const global = planned.filter((p) => p.hit.scope === 'global');
    const own = planned.filter((p) => p.hit.scope === 'subject');
    const held: Array<'subject' | 'global'> = [];
    // The subject's own slot first (where most refusals happen), then the router-wide counters;
    // a global refusal gives the subject's reservation back. Two slots, so under contention a
    // call may briefly see budget held by one that is about to give it back: it refuses, never overspends.
    if (own.length > 0) {
      const outcome = await store.reserveUsage({
        scope: subject,
        id,
        at,
        counters: own.map((p) => p.counter),
      });
      if (outcome.kind === 'over') return { kind: 'limited', hit: hitOf(own, outcome) };
      held.push('subject');
    }
    if (global.length > 0) {
      const outcome = await store.reserveUsage({
        scope: '*',
        id,
        at,
        counters: global.map((p) => p.counter),
      });
      if (outcome.kind === 'over') {
        if (held.length > 0) await store.releaseUsage(subject, id);
        return { kind: 'limited', hit: hitOf(global, outcome) };
      }
      held.push('global');
    }
    return { kind: 'admitted', held };
  }

  #plan(rules: Rules, toolName: string | undefined, at: number, money: Money | undefined): Planned[] {
    const prefix = toolName === undefined ? '' : `tool:${toolName}:`;
    const tool = toolName === undefined ? {} : { tool: toolName };
    const out: Planned[] = [];
    if (money !== undefined) {
      for (const s of rules.spend) {
        if (s.max.currency !== money.currency) continue;
        out.push({
          counter: {
            key: `${prefix}spend:${s.max.currency}:${periodName(s.per)}`,
            add: money.minor,
            limit: s.max.minor,
            window: windowOf(s.per, at),
          },
          hit: {
            kind: 'spend',
            scope: s.scope,
            ...tool,
            limit: s.max.minor,
            currency: s.max.currency,
            ...periodOf(s.per),
          },
        });
      }
    }
    for (const c of rules.calls) {
      out.push({
        counter: {
          key: `${prefix}calls:${periodName(c.per)}`,
          add: 1,
          limit: c.max,
          window: windowOf(c.per, at),
        },
        hit: { kind: 'calls', scope: c.scope, ...tool, limit: c.max, ...periodOf(c.per) },
      });
    }
    return out;
  }
}

function periodOf(per: Period): Pick<LimitHit, 'period' | 'windowMs'> {
  return typeof per === 'object' ? { period: 'rolling', windowMs: per.rollingMs } : { period: per };
}

function hitOf(planned: Planned[], over: { key: string; used: number; resetsAt: number }): LimitHit {
  const found = planned.find((p) => p.counter.key === over.key) ?? planned[0]!;
  return { ...found.hit, used: over.used, resetsAt: over.resetsAt };
}

function hasRules(rules: Rules): boolean {
  return rules.spend.length > 0 || rules.calls.length > 0 || rules.free !== undefined;
}

/**
 * Whose budget a subject spends: its own, or for anonymous stateless callers (a new subject on
 * every request) their tool's pool, so the allowance and caps of "a payer" cannot be had afresh
 * with each request.
 */
function usageScopeOf(subject: string): string {
  return openScopeOf(subject);
}
