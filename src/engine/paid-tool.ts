import { z } from 'zod';
import { ConfigError, MoneyError } from '../core/errors.js';
import type { ToolResult } from '../core/intent/record.js';
import { type Money, type PriceInput, parseMoney, toDecimalString } from '../core/money/money.js';

/** A fixed price, or a function of the validated arguments evaluated once per call. */
export type PriceSpec = PriceInput | ((args: Record<string, unknown>) => PriceInput | Promise<PriceInput>);

/** What the engine needs of the protocol's per-call context; the MCP layer passes its own `extra`, which has these. */
export interface CallExtra {
  signal: AbortSignal;
  requestId: string | number;
}

/** A priced tool as the router keeps it. */
export interface PaidTool {
  name: string;
  description: string;
  /** Fixed price, parsed at registration; undefined for dynamic prices. */
  fixedPrice?: Money;
  priceFn?: (args: Record<string, unknown>) => PriceInput | Promise<PriceInput>;
  /** Per-tool provider override. */
  providers?: readonly string[];
  hasInputSchema: boolean;
  hasOutputSchema: boolean;
  /** Re-validates stored arguments before a deferred run (confirm_payment), when the schema allows it. */
  parseArgs: (raw: unknown) => Record<string, unknown>;
  handler: (args: Record<string, unknown>, extra: CallExtra) => ToolResult | Promise<ToolResult>;
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

type ParseableSchema = { safeParse: (value: unknown) => { success: boolean; data?: unknown } };

function isParseable(value: unknown): value is ParseableSchema {
  return (
    typeof value === 'object' && value !== null && typeof (value as ParseableSchema).safeParse === 'function'
  );
}

/**
 * Arguments stored with a payment are the SDK-validated ones; parsing them again through the
 * tool's schema (zod v4 raw shapes or any schema with safeParse) restores transformed values.
 */
export function argumentParser(inputSchema: unknown): (raw: unknown) => Record<string, unknown> {
  let schema: ParseableSchema | undefined;
  if (isParseable(inputSchema)) {
    schema = inputSchema;
  } else if (inputSchema && typeof inputSchema === 'object') {
    const values = Object.values(inputSchema as Record<string, unknown>);
    if (values.every((v) => typeof v === 'object' && v !== null && '_zod' in v)) {
      schema = z.object(inputSchema as z.ZodRawShape);
    }
  }
  return (raw) => {
    const value = (raw ?? {}) as Record<string, unknown>;
    if (!schema) return value;
    const parsed = schema.safeParse(value);
    return parsed.success ? (parsed.data as Record<string, unknown>) : value;
  };
}
