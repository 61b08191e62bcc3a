import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Money } from '../core/money/money.js';
import type { PaymentProvider } from '../core/provider.js';
import type { RoutingPolicy } from '../core/route/route.js';
import { type ProviderConfigMap, providersFromConfig } from '../providers/config.js';
import type { OpenLimits, PaymentStore } from '../store/types.js';
import type { ConfirmationOptions } from './confirmation/index.js';
import type { LedgerEntry } from './ledger/ledger.js';
import { usageLimitsShape } from './limits/limits.js';

/** `auto`: URL elicitation when the client has it, else the payment-required result.
 *  `elicitation`: also put the link in a form elicitation for form-only clients (opt-in; the spec advises against links in forms).
 *  `two_step`: always the payment-required result and `confirm_payment`. */
export type PaymentFlow = 'auto' | 'elicitation' | 'two_step';

export type { ProviderConfigMap } from '../providers/config.js';

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
  /** `paymentId`: the provider's own id of the new payment (Stripe's `cs_…`), as `provider_payment_id`. */
  onPaymentCreated?: (event: PaymentEvent & { paymentId: string; url: string }) => void | Promise<void>;
  onPaid?: (event: PaymentEvent) => void | Promise<void>;
  onToolRun?: (event: PaymentEvent & { ok: boolean; error?: string }) => void | Promise<void>;
  /** Every new ledger entry, once across instances sharing the store (as `router.ledger.on('entry')`). */
  onLedgerEntry?: (entry: LedgerEntry) => void | Promise<void>;
}

const isFunction = (value: unknown) => typeof value === 'function';
/** A function-valued option, typed as `T`: zod checks it is a function; TypeScript checks its shape. */
const fn = <T>() => z.custom<T>(isFunction, 'must be a function');
const ms = (max?: number) =>
  max === undefined ? z.number().int().positive() : z.number().int().positive().max(max);

/**
 * The engine's options, one strict schema: the TypeScript type is derived from it, the defaults
 * live in `resolveSettings`, and an unknown key is refused (the router names the nearest valid one).
 */
export const engineOptionsSchema = z.object({
  /** Payment providers, in preference order: instances, or PayMCP's `{ walleot: {...}, stripe: {...} }`. Required. */
  providers: z.union([
    z.array(
      z.custom<PaymentProvider>((v) => typeof v === 'object' && v !== null, 'must be a PaymentProvider'),
    ),
    z.custom<ProviderConfigMap>((v) => typeof v === 'object' && v !== null && !Array.isArray(v)),
  ]),
  /** Where intents, claims and results live. Default: memoryStore() (one process). */
  store: z
    .custom<PaymentStore>((v) => typeof v === 'object' && v !== null, 'must be a PaymentStore')
    .optional(),
  /** How the payment link reaches the payer. Default `auto`. See PaymentFlow. */
  flow: z.enum(['auto', 'elicitation', 'two_step']).optional(),
  /** Public base URL of this server's httpHandler(): enables the hosted pay and return pages and webhooks. Default: none. */
  publicUrl: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), 'publicUrl must be http(s)')
    .optional(),
  /**
   * Who the payer is paying, as the hosted pages name it (your service, e.g. "Image Tools").
   * Default: the host of `publicUrl` (the SDK has no public way to read the McpServer's name).
   */
  name: z.string().trim().min(1).max(100).optional(),
  /**
   * Who pays the providers' fees. `merchant` (default): you absorb them, the payer pays exactly the
   * price, and methods are described by kind and speed. `payer`: your provider accounts surcharge
   * the payer, so the hosted pages show each method's fee.
   */
  feesPaidBy: z.enum(['merchant', 'payer']).optional(),
  routing: z
    .object({
      /** Default `user_choice`: several eligible methods are offered to the payer when the client can ask. */
      policy: z.enum(['user_choice', 'lowest_fee', 'first']).optional(),
      /** How long a remembered method choice lasts, ms. Default 30 days. */
      rememberChoiceMs: ms().optional(),
    })
    .strict()
    .optional(),
  /** Callbacks around a paid call; a throwing hook is logged, never breaks the call (beforeCharge refuses). */
  hooks: z
    .object({
      beforeCharge: fn<BeforeChargeHook>().optional(),
      onPaymentCreated: fn<NonNullable<PayRouterHooks['onPaymentCreated']>>().optional(),
      onPaid: fn<NonNullable<PayRouterHooks['onPaid']>>().optional(),
      onToolRun: fn<NonNullable<PayRouterHooks['onToolRun']>>().optional(),
      onLedgerEntry: fn<NonNullable<PayRouterHooks['onLedgerEntry']>>().optional(),
    })
    .strict()
    .optional(),
  /** Where log lines go, after secrets are removed. Default: stderr, debug lines with DEBUG=payrouter*. */
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null, 'must be a Logger').optional(),
  timeouts: z
    .object({
      /** Longest the payer may take to pick a method, ms. Default 30 s. */
      choiceMs: ms(600_000).optional(),
      /** Longest a call waits for the payment before returning the payment-required result, ms. Default 25 s. */
      paymentWaitMs: z.number().int().nonnegative().max(600_000).optional(),
      /**
       * Longest a whole paid call may take before it answers, ms. Default 50 s, under the 60 s
       * request timeout of most clients; every step's wait is cut to fit. The next call resumes.
       */
      callBudgetMs: ms(3_600_000).optional(),
    })
    .strict()
    .optional(),
  /** How long a payment link stays valid, ms. Default 60 min (Stripe accepts 31 min to 24 h). */
  paymentTtlMs: ms().optional(),
  /** How long a tool's result is kept after it ran, ms. Default 24 h. */
  resultTtlMs: ms().optional(),
  /** How long after a running tool's instance stops renewing its claim another may take over, ms. Default 5 min. */
  leaseMs: ms().optional(),
  /** When the paid tool throws: `keep` the payment for a retry of the same call (default), or `refund` it. */
  onToolError: z.enum(['keep', 'refund']).optional(),
  /** Largest accepted canonical argument JSON, bytes. Default 64 KiB. */
  maxArgumentBytes: ms().optional(),
  /**
   * Per-payer bounds, enforced atomically by the store when a payment is opened, so no single payer
   * can fill the store or a provider's quota for the others.
   */
  limits: z
    .object({
      /** Unpaid payments one subject may have open at once. Default 20. */
      openPerSubject: ms().optional(),
      /** Canonical argument bytes over one subject's unpaid payments. Default 1 MiB. */
      openArgumentBytesPerSubject: ms().optional(),
      /**
       * Unpaid payments of one tool open at once across every anonymous stateless caller (protocol
       * 2026-07-28 without sign-in or session: each request is a payer of its own, so the
       * per-subject bound alone never stops one). Default 1000.
       */
      openPerToolAnonymous: ms().optional(),
      /** Canonical argument bytes over those payments of one tool. Default 16 MiB. */
      openArgumentBytesPerToolAnonymous: ms().optional(),
      ...usageLimitsShape,
      /** The clock periods are counted on (ms since epoch). Default Date.now. */
      clock: fn<() => number>().optional(),
    })
    .strict()
    .optional(),
  /** The ledger of payments, free calls, runs, refunds and cancels, kept in the store. */
  ledger: z
    .object({
      /** How long entries are kept, ms. Default 90 days. */
      retentionMs: ms().optional(),
    })
    .strict()
    .optional(),
  /** OpenTelemetry through @opentelemetry/api (a no-op unless the application registers an SDK). */
  telemetry: z
    .object({
      /** Default true; false skips every span and metric. */
      enabled: z.boolean().optional(),
      tracerProvider: z.custom<object>((v) => typeof v === 'object' && v !== null).optional(),
      meterProvider: z.custom<object>((v) => typeof v === 'object' && v !== null).optional(),
    })
    .strict()
    .optional(),
  /** Tuning of the confirmation layer: cache freshness, polling back-off, rate budget share. */
  confirmation: z
    .object({
      pendingTtlMs: z.number().nonnegative().optional(),
      poll: z
        .object({
          initialMs: z.number().positive().optional(),
          factor: z.number().min(1).optional(),
          maxMs: z.number().positive().optional(),
        })
        .strict()
        .optional(),
      budgetShare: z.number().positive().max(1).optional(),
      pushed: fn<NonNullable<ConfirmationOptions['pushed']>>().optional(),
    })
    .strict()
    .optional(),
});

/** The options of the engine; the router adds the protocol's own (subject, descriptions). */
export type EngineOptions = z.input<typeof engineOptionsSchema>;

export interface ResolvedSettings {
  flow: PaymentFlow;
  publicUrl: string | undefined;
  /** The `name` option: who the hosted pages say the payer is paying. */
  serverName: string | undefined;
  feesPaidBy: 'merchant' | 'payer';
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
  limits: OpenLimits;
  /** The bounds of one tool's pool of anonymous stateless payers (counted as one subject). */
  anonymousLimits: OpenLimits;
}

/** Every default in one place. `options` has passed the schema. */
export function resolveSettings(o: EngineOptions): ResolvedSettings {
  return {
    flow: o.flow ?? 'auto',
    publicUrl: o.publicUrl?.replace(/\/+$/, ''),
    serverName: o.name,
    feesPaidBy: o.feesPaidBy ?? 'merchant',
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
    limits: {
      openPerSubject: o.limits?.openPerSubject ?? 20,
      openArgumentBytesPerSubject: o.limits?.openArgumentBytesPerSubject ?? 1024 * 1024,
    },
    anonymousLimits: {
      openPerSubject: o.limits?.openPerToolAnonymous ?? 1000,
      openArgumentBytesPerSubject: o.limits?.openArgumentBytesPerToolAnonymous ?? 16 * 1024 * 1024,
    },
  };
}

/** Names people reach for from other libraries, and what they mean here. */
const ALIASES: Record<string, string> = {
  mode: 'flow',
  timeout: 'timeouts',
  paymentFlow: 'flow',
  webhookUrl: 'publicUrl',
  baseUrl: 'publicUrl',
};

/**
 * Parse options against `schema`, strict at every level. A problem names the option path, and an
 * unknown key names the nearest valid one.
 */
export function parseOptions<S extends z.ZodObject>(schema: S, options: unknown): z.output<S> {
  const parsed = schema.strict().safeParse(options);
  if (parsed.success) return parsed.data as z.output<S>;
  const issue = parsed.error.issues[0];
  if (issue?.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    const path = [...issue.path.map(String), key].join('.');
    const known = Object.keys(shapeAt(schema, issue.path) ?? {});
    const nearest = ALIASES[key] && known.includes(ALIASES[key]) ? ALIASES[key] : closest(key, known);
    throw new ConfigError(
      `PayRouter options: unknown option "${path}"${nearest ? `; did you mean "${[...issue.path.map(String), nearest].join('.')}"?` : ''}${known.length ? ` Valid here: ${known.join(', ')}.` : ''}`,
    );
  }
  throw new ConfigError(
    `PayRouter options: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}`.trim(),
  );
}

function shapeAt(schema: z.ZodObject, path: readonly PropertyKey[]): Record<string, unknown> | undefined {
  let current: unknown = schema;
  for (const key of path) {
    const shape = objectShape(current);
    current = shape?.[String(key)];
  }
  return objectShape(current);
}

function objectShape(schema: unknown): Record<string, unknown> | undefined {
  let current = schema as { shape?: Record<string, unknown>; unwrap?: () => unknown } | undefined;
  for (
    let i = 0;
    i < 4 && current && current.shape === undefined && typeof current.unwrap === 'function';
    i++
  ) {
    current = current.unwrap() as typeof current;
  }
  return current?.shape;
}

/** The candidate within two edits (or sharing a prefix), if any. */
function closest(key: string, candidates: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (best === undefined || distance < best.distance) best = { name, distance };
  }
  if (!best) return undefined;
  const prefix =
    best.name.toLowerCase().startsWith(key.toLowerCase()) ||
    key.toLowerCase().startsWith(best.name.toLowerCase());
  return best.distance <= Math.max(2, Math.floor(key.length / 3)) || prefix ? best.name : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/**
 * Instances as given, or built from the configuration mapping. Ids must be unique, and each
 * provider must accept the payment lifetime (`capabilities.expiryWindowMs`): the stored plan's
 * expiry is sent unchanged on every retry, so it cannot be clamped at send time.
 */
export function resolveProviders(
  input: EngineOptions['providers'],
  logger: Logger,
  settings: Pick<ResolvedSettings, 'paymentTtlMs'>,
): PaymentProvider[] {
  let providers: PaymentProvider[];
  if (Array.isArray(input)) {
    providers = [...input];
  } else if (input !== null && typeof input === 'object') {
    // The mapping form is built by payrouter/providers; its providers load their SDKs lazily.
    providers = providersFromConfig(input as ProviderConfigMap, { logger });
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
    const window = p.capabilities?.expiryWindowMs;
    if (window !== undefined && (settings.paymentTtlMs < window.min || settings.paymentTtlMs > window.max)) {
      throw new ConfigError(
        `paymentTtlMs ${settings.paymentTtlMs} (${describeMs(settings.paymentTtlMs)}) is outside what provider "${p.id}" accepts: ` +
          `${window.min} to ${window.max} ms (${describeMs(window.min)} to ${describeMs(window.max)}); choose a paymentTtlMs in that range`,
      );
    }
  }
  return providers;
}

function describeMs(ms: number): string {
  const minutes = ms / 60_000;
  if (minutes >= 60 && Number.isInteger(minutes / 60)) return `${minutes / 60} h`;
  return Number.isInteger(minutes) ? `${minutes} min` : `${ms / 1000} s`;
}
