import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Money } from '../core/money/money.js';
import type { PaymentProvider } from '../core/provider.js';
import type { RoutingPolicy } from '../core/route/route.js';
import { StripeProvider, type StripeProviderOptions } from '../providers/stripe.js';
import { WalleotProvider, type WalleotProviderOptions } from '../providers/walleot.js';
import type { PaymentStore } from '../store/types.js';
import type { ConfirmationOptions } from './confirmation/index.js';

/** `auto`: URL elicitation when the client has it, else the payment-required result.
 *  `elicitation`: also put the link in a form elicitation for form-only clients (opt-in; the spec advises against links in forms).
 *  `two_step`: always the payment-required result and `confirm_payment`. */
export type PaymentFlow = 'auto' | 'elicitation' | 'two_step';

/** The PayMCP-style configuration mapping: `{ walleot: { apiKey }, stripe: { apiKey } }`. */
export interface ProviderConfigMap {
  walleot?: WalleotProviderOptions;
  stripe?: StripeProviderOptions;
}

export interface ChargeContext {
  tool: string;
  args: unknown;
  amount: Money;
  subject: string;
}

/** Return false or `{ allow: false, reason }` to refuse a charge (e.g. a per-user spending cap). */
export type BeforeChargeHook = (
  context: ChargeContext,
) =>
  | boolean
  | undefined
  | { allow: boolean; reason?: string }
  | Promise<boolean | undefined | { allow: boolean; reason?: string }>;

export interface PaymentEvent {
  intentId: string;
  tool: string;
  subject: string;
  amount: Money;
  providerId: string;
}

export interface PayRouterHooks {
  beforeCharge?: BeforeChargeHook;
  onPaymentCreated?: (event: PaymentEvent & { paymentId: string; url: string }) => void | Promise<void>;
  onPaid?: (event: PaymentEvent) => void | Promise<void>;
  onToolRun?: (event: PaymentEvent & { ok: boolean; error?: string }) => void | Promise<void>;
}

/** The options of the engine; the router adds the protocol's own (subject, descriptions). */
export interface EngineOptions {
  providers: readonly PaymentProvider[] | ProviderConfigMap;
  /** Where intents, claims and results live. Default: memoryStore() (one process). */
  store?: PaymentStore;
  flow?: PaymentFlow;
  /** Public base URL of this server's httpHandler(): enables the hosted pay and return pages and webhooks. */
  publicUrl?: string;
  routing?: {
    policy?: RoutingPolicy;
    /** How long a remembered method choice lasts (ms, default 30 days). */
    rememberChoiceMs?: number;
  };
  hooks?: PayRouterHooks;
  logger?: Logger;
  timeouts?: {
    /** Longest the user may take to pick a method (default 30 s). */
    choiceMs?: number;
    /** Longest a call waits for the payment to complete before returning the pending result (default 25 s). */
    paymentWaitMs?: number;
    /**
     * Longest a whole paid call may take before it answers (default 50 s, under the 60 s request
     * timeout of most clients); every step's wait is cut to fit. The next call resumes the payment.
     */
    callBudgetMs?: number;
  };
  /** How long a payment link stays valid (default 60 min; Stripe accepts 31 min to 24 h, so a retry replays exactly). */
  paymentTtlMs?: number;
  /** How long a tool's result is kept after it ran (default 24 h). */
  resultTtlMs?: number;
  /** How long after a running tool's instance stops renewing its claim (it crashed) another instance may take over (default 5 min). */
  leaseMs?: number;
  /** What happens to the payment when the tool throws: kept for a retry of the same call (default) or refunded. */
  onToolError?: 'keep' | 'refund';
  /** Largest accepted canonical argument JSON, in bytes (default 64 KiB). */
  maxArgumentBytes?: number;
  /** Tuning of the confirmation layer (cache freshness, polling back-off, rate budget share). */
  confirmation?: Pick<ConfirmationOptions, 'pendingTtlMs' | 'poll' | 'budgetShare' | 'pushed'>;
}

const optionsSchema = z
  .object({
    flow: z.enum(['auto', 'elicitation', 'two_step']).optional(),
    publicUrl: z
      .string()
      .url()
      .refine((u) => /^https?:\/\//.test(u), 'publicUrl must be http(s)')
      .optional(),
    routing: z
      .object({
        policy: z.enum(['user_choice', 'lowest_fee', 'first']).optional(),
        rememberChoiceMs: z.number().int().positive().optional(),
      })
      .optional(),
    timeouts: z
      .object({
        choiceMs: z.number().int().positive().max(600_000).optional(),
        paymentWaitMs: z.number().int().nonnegative().max(600_000).optional(),
        callBudgetMs: z.number().int().positive().max(3_600_000).optional(),
      })
      .optional(),
    paymentTtlMs: z.number().int().positive().optional(),
    resultTtlMs: z.number().int().positive().optional(),
    leaseMs: z.number().int().positive().optional(),
    onToolError: z.enum(['keep', 'refund']).optional(),
    maxArgumentBytes: z.number().int().positive().optional(),
  })
  .passthrough();

export interface ResolvedSettings {
  flow: PaymentFlow;
  publicUrl: string | undefined;
  policy: RoutingPolicy;
  rememberChoiceMs: number;
  choiceMs: number;
  paymentWaitMs: number;
  callBudgetMs: number;
  paymentTtlMs: number;
  resultTtlMs: number;
  leaseMs: number;
  onToolError: 'keep' | 'refund';
  maxArgumentBytes: number;
}

export function resolveSettings(options: EngineOptions): ResolvedSettings {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(
      `PayRouter options: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}`.trim(),
    );
  }
  const o = parsed.data;
  return {
    flow: o.flow ?? 'auto',
    publicUrl: o.publicUrl?.replace(/\/+$/, ''),
    policy: o.routing?.policy ?? 'user_choice',
    rememberChoiceMs: o.routing?.rememberChoiceMs ?? 30 * 24 * 60 * 60 * 1000,
    choiceMs: o.timeouts?.choiceMs ?? 30_000,
    paymentWaitMs: o.timeouts?.paymentWaitMs ?? 25_000,
    callBudgetMs: o.timeouts?.callBudgetMs ?? 50_000,
    paymentTtlMs: o.paymentTtlMs ?? 60 * 60 * 1000,
    resultTtlMs: o.resultTtlMs ?? 24 * 60 * 60 * 1000,
    leaseMs: o.leaseMs ?? 5 * 60 * 1000,
    onToolError: o.onToolError ?? 'keep',
    maxArgumentBytes: o.maxArgumentBytes ?? 64 * 1024,
  };
}

/** Instances as given, or built from the configuration mapping. Ids must be unique. */
export function resolveProviders(input: EngineOptions['providers'], logger: Logger): PaymentProvider[] {
  let providers: PaymentProvider[];
  if (Array.isArray(input)) {
    providers = [...input];
  } else if (input !== null && typeof input === 'object') {
    const map = input as ProviderConfigMap & Record<string, unknown>;
    const unknown = Object.keys(map).filter((k) => k !== 'walleot' && k !== 'stripe');
    if (unknown.length > 0) {
      throw new ConfigError(
        `Unknown provider "${unknown[0]}" in providers: the mapping form knows "walleot" and "stripe"; pass other providers as instances`,
      );
    }
    providers = [];
    if (map.walleot) providers.push(new WalleotProvider({ logger, ...map.walleot }));
    if (map.stripe) providers.push(new StripeProvider({ logger, ...map.stripe }));
  } else {
    throw new ConfigError(
      'PayRouter needs providers: an array of provider instances or { walleot: {...}, stripe: {...} }',
    );
  }
  if (providers.length === 0) throw new ConfigError('PayRouter needs at least one payment provider');
  const seen = new Set<string>();
  for (const p of providers) {
    if (!p || typeof p.id !== 'string' || typeof p.createPayment !== 'function') {
      throw new ConfigError(
        'Every entry of providers must be a PaymentProvider (id, capabilities, createPayment, ...)',
      );
    }
    if (seen.has(p.id))
      throw new ConfigError(`Two providers share the id "${p.id}"; give one of them another id`);
    seen.add(p.id);
  }
  return providers;
}
