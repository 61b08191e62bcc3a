import type {
  CallToolResult,
  Icon,
  McpServer,
  RegisteredTool,
  ServerContext,
  StandardSchemaWithJSON,
  ToolAnnotations,
} from '@modelcontextprotocol/server';
import type { PriceInput } from '../core/money/money.js';
import type { PaymentContext } from '../engine/paid-tool.js';

/** The validated arguments a v2 tool's handler (and a dynamic price) receives. */
export type ToolArgsV2<InputArgs> = InputArgs extends StandardSchemaWithJSON
  ? StandardSchemaWithJSON.InferOutput<InputArgs>
  : Record<string, never>;

/** A price: fixed, or computed once per call from the validated arguments. */
export type ToolPriceV2<InputArgs> =
  | PriceInput
  | ((args: ToolArgsV2<InputArgs>) => PriceInput | Promise<PriceInput>);

/** The v2 SDK's tool config plus what makes a tool paid (`ProviderId`: the router's provider ids). */
export interface PaidToolConfigV2<
  OutputArgs extends StandardSchemaWithJSON,
  InputArgs extends StandardSchemaWithJSON | undefined,
  ProviderId extends string = string,
> {
  title?: string;
  description?: string;
  inputSchema?: InputArgs;
  outputSchema?: OutputArgs;
  annotations?: ToolAnnotations;
  icons?: Icon[];
  _meta?: Record<string, unknown>;
  /** Makes the tool paid. Decimal amounts are exact: 0.29 USD is 29 cents; 1.005 USD is refused. */
  price: ToolPriceV2<InputArgs>;
  /** Only these of the router's providers may take this tool's payments, by id. */
  providers?: readonly ProviderId[];
}

/** What a paid v2 tool's handler gets: the SDK's `ctx`, plus the payment it runs for. */
export type PaidToolContextV2 = ServerContext & { payment: PaymentContext };

/**
 * A paid v2 tool's handler. It runs once, after payment, so it returns a complete result (no
 * input-required rounds of its own).
 */
export type PaidToolCallbackV2<InputArgs extends StandardSchemaWithJSON | undefined> =
  InputArgs extends StandardSchemaWithJSON
    ? (args: ToolArgsV2<InputArgs>, ctx: PaidToolContextV2) => CallToolResult | Promise<CallToolResult>
    : (ctx: PaidToolContextV2) => CallToolResult | Promise<CallToolResult>;

/** `registerTool` of a v2 server the router is installed on: the SDK's, plus `price` and `providers`. */
export type PaidRegisterToolV2<ProviderId extends string = string> = <
  OutputArgs extends StandardSchemaWithJSON,
  InputArgs extends StandardSchemaWithJSON | undefined = undefined,
>(
  name: string,
  config: PaidToolConfigV2<OutputArgs, InputArgs, ProviderId>,
  cb: PaidToolCallbackV2<InputArgs>,
) => RegisteredTool;

/** The paid v2 `registerTool` as a method, so a server typed for some ids is still a PaidMcpServerV2. */
interface PaidRegistrationV2<ProviderId extends string> {
  registerTool<
    OutputArgs extends StandardSchemaWithJSON,
    InputArgs extends StandardSchemaWithJSON | undefined = undefined,
  >(
    name: string,
    config: PaidToolConfigV2<OutputArgs, InputArgs, ProviderId>,
    cb: PaidToolCallbackV2<InputArgs>,
  ): RegisteredTool;
}

/**
 * A v2 McpServer after `installV2`: `registerTool` also takes `price` and `providers`. (The paid
 * signature comes first in the intersection, so TypeScript types a paid handler's `ctx` from it.)
 */
export type PaidMcpServerV2<S extends McpServer = McpServer, ProviderId extends string = string> = {
  registerTool: PaidRegistrationV2<ProviderId>['registerTool'];
} & S;
