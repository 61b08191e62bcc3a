import { z } from 'zod';
import { canonicalJson, sha256Hex } from '../core/canonical-json.js';
import { ConfigError, MoneyError, PayRouterError } from '../core/errors.js';
import type { Binding, IntentRecord, ToolResult } from '../core/intent/record.js';
import { type Money, type PriceInput, parseMoney, toDecimalString } from '../core/money/money.js';
import type { ToolRules } from './limits/limits.js';

/** A fixed price, or a function of the validated arguments evaluated once per call. */
export type PriceSpec = PriceInput | ((args: Record<string, unknown>) => PriceInput | Promise<PriceInput>);

/** What the engine needs of the protocol's per-call context; the MCP layer passes its own `extra`, which has these. */
export interface CallExtra {
  signal: AbortSignal;
  requestId: string | number;
}

/** What a paid tool's handler gets as `extra.payment`. */
export interface PaymentContext {
  paymentId: string;
  /** Stable for this payment: the same on every run of it, so side effects can be made idempotent. */
  idempotencyKey: string;
  amount: Money;
  /** The provider that was paid (`'free'` for a call of a free allowance). */
  provider: string;
  /**
   * The provider's own id of the paid payment (Stripe's Checkout Session id `cs_…`, Walleot's
   * session id, x402's credential id); absent for a free call.
   */
  providerPaymentId?: string;
}

/** A priced tool as the router keeps it. */
export interface PaidTool {
  name: string;
  description: string;
  /** Fixed price, parsed at registration; undefined for dynamic prices. */
  fixedPrice?: Money;
  priceFn?: (args: Record<string, unknown>) => PriceInput | Promise<PriceInput>;
  /** The tool's own caps, quotas and free allowance. */
  limits?: ToolRules;
  /** Per-tool provider override. */
  providers?: readonly string[];
  hasInputSchema: boolean;
  hasOutputSchema: boolean;
  /** The replayable wire form of a call's arguments (hashed into the binding, stored for a deferred run). */
  wireForm: (args: Record<string, unknown>) => WireForm;
  /** Parses a stored wire form once, for a deferred run. */
  parseWire: (json: string) => { ok: true; args: Record<string, unknown> } | { ok: false; message: string };
  handler: (
    args: Record<string, unknown>,
    extra: CallExtra,
    payment: PaymentContext,
  ) => ToolResult | Promise<ToolResult>;
}

const priceObject = z.object({ amount: z.union([z.number(), z.string()]), currency: z.string() }).strict();

/** Read the price from a tool config: top-level `price`, or `_meta.price` as in PayMCP. */
export function readPriceSpec(
  toolName: string,
  config: { price?: unknown; _meta?: Record<string, unknown> },
): PriceSpec | undefined {
  const raw = config.price ?? config._meta?.['price'];
  if (raw === undefined) return undefined;
  if (typeof raw === 'function') return raw as PriceSpec;
  const parsed = priceObject.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      `Tool "${toolName}": price must be { amount, currency } (amount a decimal number or string, e.g. { amount: 0.25, currency: 'USD' }) or a function of the arguments`,
    );
  }
  return parsed.data;
}

export function parseFixedPrice(toolName: string, price: PriceInput): Money {
  try {
    return parseMoney(price.amount, price.currency);
  } catch (error) {
    const reason = error instanceof MoneyError ? error.message : String(error);
    throw new ConfigError(
      `Tool "${toolName}": invalid price: ${reason}. Write the price as a positive exact decimal in the currency's minor units, e.g. 0.25 USD or 500 JPY`,
    );
  }
}

/** Evaluate the tool's price for one call. Throws MoneyError for a dynamic price that is not exact. */
export async function priceForCall(tool: PaidTool, args: Record<string, unknown>): Promise<Money> {
  if (tool.fixedPrice) return tool.fixedPrice;
  if (!tool.priceFn) throw new MoneyError(`Tool "${tool.name}" has no price`);
  const price = priceObject.safeParse(await tool.priceFn(args));
  if (!price.success)
    throw new MoneyError(`Tool "${tool.name}": the price function must return { amount, currency }`);
  return parseMoney(price.data.amount, price.data.currency);
}

/** The price as shown to clients in the tool's `_meta`, so they can display it before calling. */
export function advertisedPrice(money: Money | undefined): Record<string, unknown> {
  if (!money) return { dynamic: true };
  return { amount: toDecimalString(money), currency: money.currency, minor: money.minor };
}

type ZodLike = z.ZodType & { _zod: { def: Record<string, unknown> & { type: string } } };

function isZod(value: unknown): value is ZodLike {
  return typeof value === 'object' && value !== null && '_zod' in value;
}

/** The tool's arguments schema as one zod object: a raw shape is what the SDK turns into one too. */
function objectSchemaOf(inputSchema: unknown): z.ZodType | undefined {
  if (inputSchema === undefined) return undefined;
  if (isZod(inputSchema)) return inputSchema;
  if (typeof inputSchema === 'object' && inputSchema !== null) {
    const values = Object.values(inputSchema as Record<string, unknown>);
    if (values.every(isZod)) return z.object(inputSchema as z.ZodRawShape);
  }
  return undefined;
}

/**
 * Where a schema's parse cannot be replayed from its wire form: a one-way transform or preprocess,
 * a custom check, or something that is not zod. Returns the path of the first such part.
 */
function unreplayablePart(schema: unknown, path: string, seen = new Set<unknown>()): string | undefined {
  if (!isZod(schema)) return `${path} (not a zod schema)`;
  if (seen.has(schema)) return undefined;
  seen.add(schema);
  const def = schema._zod.def;
  const walk = (child: unknown, at: string) => unreplayablePart(child, at, seen);
  switch (def.type) {
    case 'transform':
      return `${path} (a one-way transform or preprocess)`;
    case 'custom':
      return `${path} (a custom schema)`;
    case 'promise':
    case 'function':
      return `${path} (a ${def.type})`;
    case 'pipe':
      return walk(def['in'], path) ?? walk(def['out'], path);
    case 'object':
      for (const [key, child] of Object.entries(def['shape'] as Record<string, unknown>)) {
        const found = walk(child, `${path}.${key}`);
        if (found) return found;
      }
      return def['catchall'] === undefined ? undefined : walk(def['catchall'], `${path}.*`);
    case 'array':
    case 'set':
      return walk(def['element'] ?? def['valueType'], `${path}[]`);
    case 'record':
    case 'map':
      return walk(def['keyType'], `${path}{key}`) ?? walk(def['valueType'], `${path}{}`);
    case 'tuple': {
      const items = (def['items'] as unknown[]).map((item, i) => walk(item, `${path}[${i}]`)).find(Boolean);
      return items ?? (def['rest'] ? walk(def['rest'], `${path}[...]`) : undefined);
    }
    case 'union':
      return (def['options'] as unknown[]).map((option) => walk(option, path)).find(Boolean);
    case 'intersection':
      return walk(def['left'], path) ?? walk(def['right'], path);
    case 'lazy':
      return walk((def['getter'] as () => unknown)(), path);
    default:
      return 'innerType' in def ? walk(def['innerType'], path) : undefined;
  }
}

/** Schema kinds whose parsed value is its own wire form (`z.encode` of a parsed value gives it back). */
const IDENTITY_KINDS: ReadonlySet<string> = new Set([
  'string',
  'number',
  'int',
  'boolean',
  'bigint',
  'null',
  'undefined',
  'void',
  'any',
  'unknown',
  'enum',
  'literal',
  'nan',
  'template_literal',
  'date',
  'object',
  'array',
  'tuple',
  'record',
  'union',
  'intersection',
  'optional',
  'nullable',
  'default',
  'prefault',
  'nonoptional',
  'readonly',
  'lazy',
]);

/**
 * Whether encoding a parsed value of this schema gives it back unchanged: no codec (a `pipe`) or
 * anything else whose encode direction differs, anywhere in it. Decided once, at registration.
 */
function encodesAsIdentity(schema: unknown, seen = new Set<unknown>()): boolean {
  if (!isZod(schema)) return false;
  if (seen.has(schema)) return true;
  seen.add(schema);
  const def = schema._zod.def;
  if (!IDENTITY_KINDS.has(def.type)) return false;
  const all = (children: unknown[]) => children.every((child) => encodesAsIdentity(child, seen));
  switch (def.type) {
    case 'object':
      return (
        all(Object.values(def['shape'] as Record<string, unknown>)) &&
        (def['catchall'] === undefined || encodesAsIdentity(def['catchall'], seen))
      );
    case 'array':
      return encodesAsIdentity(def['element'], seen);
    case 'record':
      return all([def['keyType'], def['valueType']]);
    case 'tuple':
      return all(def['items'] as unknown[]) && (def['rest'] == null || encodesAsIdentity(def['rest'], seen));
    case 'union':
      return all(def['options'] as unknown[]);
    case 'intersection':
      return all([def['left'], def['right']]);
    case 'lazy':
      return encodesAsIdentity((def['getter'] as () => unknown)(), seen);
    default:
      return 'innerType' in def ? encodesAsIdentity(def['innerType'], seen) : true;
  }
}

/** The replayable wire form of a call's arguments: what the client sent, as canonical JSON. */
export type WireForm = { ok: true; json: string; hash: string } | { ok: false; message: string };

/**
 * How a paid tool keeps its arguments for a deferred run: an in-call run hands the SDK's parsed
 * arguments over unchanged, and a deferred run (confirm_payment, another instance) parses the
 * stored wire form (`z.encode`, the identity for schemas without transforms) exactly once. A
 * schema whose parse cannot be replayed is refused here, at registration.
 */
export function argumentCodec(toolName: string, inputSchema: unknown) {
  const schema = objectSchemaOf(inputSchema);
  if (inputSchema !== undefined && schema === undefined) {
    throw new ConfigError(
      `Tool "${toolName}": its inputSchema is not a zod schema or shape. A paid tool's arguments are stored to run it after payment, so payrouter must be able to parse them again: use zod.`,
    );
  }
  const part = schema === undefined ? undefined : unreplayablePart(schema, 'inputSchema');
  if (part !== undefined) {
    throw new ConfigError(
      `Tool "${toolName}": ${part} cannot be replayed: a paid call may run after payment from its stored arguments, and a one-way step would then run on other values. Use z.codec (with encode and decode) or move the transform into the handler.`,
    );
  }
  // Most schemas have no codec: their parsed arguments are already the wire form, so the per-call
  // `z.encode` (a second walk of the arguments through zod) is skipped for them.
  const encoder = schema !== undefined && !encodesAsIdentity(schema) ? schema : undefined;
  return {
    wireForm(args: Record<string, unknown>): WireForm {
      let wire: unknown = args;
      if (encoder !== undefined) {
        try {
          wire = z.encode(encoder, args);
        } catch {
          return { ok: false, message: 'the arguments could not be stored for a later run' };
        }
      }
      let json: string;
      try {
        json = canonicalJson(wire);
      } catch (error) {
        return {
          ok: false,
          message: error instanceof PayRouterError ? error.message : 'the arguments are not JSON',
        };
      }
      return { ok: true, json, hash: sha256Hex(json) };
    },
    parseWire(json: string): { ok: true; args: Record<string, unknown> } | { ok: false; message: string } {
      let raw: unknown;
      try {
        raw = JSON.parse(json);
      } catch {
        return { ok: false, message: 'the stored arguments are unreadable' };
      }
      if (schema === undefined) return { ok: true, args: {} };
      const parsed = schema.safeParse(raw);
      if (!parsed.success)
        return { ok: false, message: "the stored arguments no longer fit the tool's schema" };
      return { ok: true, args: parsed.data as Record<string, unknown> };
    },
  };
}

/** The binding the tool as it is now gives an intent: its own name and, for a fixed price, that price. */
export function expectedBinding(tool: PaidTool, intent: IntentRecord): Binding {
  return {
    ...intent.binding,
    tool: tool.name,
    ...(tool.fixedPrice ? { amount: tool.fixedPrice.minor, currency: tool.fixedPrice.currency } : {}),
  };
}
