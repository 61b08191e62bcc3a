import type { RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import type {
  AnySchema,
  SchemaOutput,
  ShapeOutput,
  ZodRawShapeCompat,
} from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { PriceInput } from '../core/money/money.js';
import type { ToolLimits } from '../engine/limits/limits.js';
import type { PaymentContext } from '../engine/paid-tool.js';
import type { ToolExtra } from './subject.js';

/** The validated arguments a tool's handler (and a dynamic price) receives. */
export type ToolArgs<InputArgs> = InputArgs extends ZodRawShapeCompat
  ? ShapeOutput<InputArgs>
  : InputArgs extends AnySchema
    ? SchemaOutput<InputArgs>
    : Record<string, never>;

/** A price: fixed, or computed once per call from the validated arguments (dynamic pricing). */
export type ToolPrice<InputArgs> =
  | PriceInput
  | ((args: ToolArgs<InputArgs>) => PriceInput | Promise<PriceInput>);

/**
 * The SDK's tool config plus what makes a tool paid. `ProviderId`: the ids of the router's
 * providers (`'walleot' | 'stripe'` for a router built with those two), so a misspelt id in
 * `providers` does not compile; `string` when the providers' ids are not literal types.
 */
export interface PaidToolConfig<
  OutputArgs extends ZodRawShapeCompat | AnySchema,
  InputArgs extends undefined | ZodRawShapeCompat | AnySchema,
  ProviderId extends string = string,
> {
  title?: string;
  description?: string;
  inputSchema?: InputArgs;
  outputSchema?: OutputArgs;
  annotations?: ToolAnnotations;
  _meta?: Record<string, unknown>;
  /** Makes the tool paid. Decimal amounts are exact: 0.29 USD is 29 cents; 1.005 USD is refused. */
  price: ToolPrice<InputArgs>;
  /** Only these of the router's providers may take this tool's payments, by id. */
  providers?: readonly ProviderId[];
  /** This tool's own spend caps, call quotas and free allowance (see the README's Limits). */
  limits?: ToolLimits;
}

/** What a paid tool's handler gets: the SDK's `extra`, plus the payment it runs for. */
export type PaidToolExtra = ToolExtra & { payment: PaymentContext };

/** A paid tool's handler: the SDK's callback shape, with `extra.payment`. */
export type PaidToolCallback<InputArgs extends undefined | ZodRawShapeCompat | AnySchema> = InputArgs extends
  | ZodRawShapeCompat
  | AnySchema
  ? (args: ToolArgs<InputArgs>, extra: PaidToolExtra) => CallToolResult | Promise<CallToolResult>
  : (extra: PaidToolExtra) => CallToolResult | Promise<CallToolResult>;

/**
 * `registerTool` of a server the router is installed on: the SDK's, plus `price` and `providers`
 * (`ProviderId`: the router's provider ids).
 */
export type PaidRegisterTool<ProviderId extends string = string> = <
  OutputArgs extends ZodRawShapeCompat | AnySchema,
  InputArgs extends undefined | ZodRawShapeCompat | AnySchema = undefined,
>(
  name: string,
  config: PaidToolConfig<OutputArgs, InputArgs, ProviderId>,
  cb: PaidToolCallback<InputArgs>,
) => RegisteredTool;

/**
 * The paid `registerTool` as a method: a method's parameters compare both ways, so a router (and
 * a server) typed for its providers' ids is still assignable to the plain `PayRouter`.
 */
export interface PaidRegistration<ProviderId extends string = string> {
  registerTool<
    OutputArgs extends ZodRawShapeCompat | AnySchema,
    InputArgs extends undefined | ZodRawShapeCompat | AnySchema = undefined,
  >(
    name: string,
    config: PaidToolConfig<OutputArgs, InputArgs, ProviderId>,
    cb: PaidToolCallback<InputArgs>,
  ): RegisteredTool;
}
