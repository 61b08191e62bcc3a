import type { RegisteredTool, ToolCallback } from '@modelcontextprotocol/sdk/server/mcp.js';
import type {
  AnySchema,
  SchemaOutput,
  ShapeOutput,
  ZodRawShapeCompat,
} from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { PriceInput } from '../core/money/money.js';

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

/** The SDK's tool config plus what makes a tool paid. */
export interface PaidToolConfig<
  OutputArgs extends ZodRawShapeCompat | AnySchema,
  InputArgs extends undefined | ZodRawShapeCompat | AnySchema,
> {
  title?: string;
  description?: string;
  inputSchema?: InputArgs;
  outputSchema?: OutputArgs;
  annotations?: ToolAnnotations;
  _meta?: Record<string, unknown>;
  /** Makes the tool paid. Decimal amounts are exact: 0.29 USD is 29 cents; 1.005 USD is refused. */
  price: ToolPrice<InputArgs>;
  /** Only these provider ids may take this tool's payments. */
  providers?: string[];
}

declare module '@modelcontextprotocol/sdk/server/mcp.js' {
  interface McpServer {
    /** payrouter: a `price` makes the tool paid once a PayRouter is installed on this server. */
    registerTool<
      OutputArgs extends ZodRawShapeCompat | AnySchema,
      InputArgs extends undefined | ZodRawShapeCompat | AnySchema = undefined,
    >(
      name: string,
      config: PaidToolConfig<OutputArgs, InputArgs>,
      cb: ToolCallback<InputArgs>,
    ): RegisteredTool;
  }
}
