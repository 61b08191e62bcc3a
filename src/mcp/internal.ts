// Package-internal: what a protocol layer other than src/mcp (the v2 SDK layer, payrouter/mcp-v2)
// needs of a PayRouter. Set by the PayRouter constructor, read by that layer; exported from no
// public entry point, so it is no API.
import type { ToolResult } from '../core/intent/record.js';
import type { CallExtra, PaidTool, PaymentContext } from '../engine/paid-tool.js';
import type { PaidCallPipeline } from '../engine/pipeline/pipeline.js';
import type { RouterCore } from '../engine/runtime.js';

/** A tool config as a protocol layer hands it over: the SDK's keys plus `price` and `providers`. */
export type AnyToolConfig = {
  description?: string;
  title?: string;
  inputSchema?: unknown;
  outputSchema?: unknown;
  _meta?: Record<string, unknown>;
  price?: unknown;
  providers?: unknown;
  [key: string]: unknown;
};

/** A paid tool ready to register: the router's record of it and the config the SDK gets. */
export type PreparedTool =
  | { paid: false; sdkConfig: Record<string, unknown> }
  | { paid: true; tool: PaidTool; sdkConfig: Record<string, unknown> };

export interface RouterInternals {
  core: RouterCore;
  pipeline: PaidCallPipeline;
  /** The router's `subject` option (1.x `extra`), if any. */
  hasSubjectOption: boolean;
  /** The `requestStateKey` option as bytes (at least 32), if given. */
  requestStateKey: Uint8Array | undefined;
  /**
   * Read a tool config as `registerTool` does: price, providers, argument codec, price sentence.
   * `invoke` runs the author's handler for a paid run.
   */
  prepareTool(
    name: string,
    config: AnyToolConfig,
    invoke: (
      args: Record<string, unknown>,
      extra: CallExtra,
      payment: PaymentContext,
    ) => ToolResult | Promise<ToolResult>,
  ): PreparedTool;
}

const internals = new WeakMap<object, RouterInternals>();

export function setRouterInternals(router: object, value: RouterInternals): void {
  internals.set(router, value);
}

export function routerInternals(router: object): RouterInternals | undefined {
  return internals.get(router);
}
