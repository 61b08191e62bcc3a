// `payrouter/augment`: opt-in types for PayMCP-style code that calls `server.registerTool(..., { price })`
// on its own McpServer variable after `new PayRouter(server, options)`. Prefer the server that
// `router.install(server)` returns: it is typed without touching the SDK's declarations, so a
// `price` on a server without a router does not compile.

import type { RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { AnySchema, ZodRawShapeCompat } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { PaidToolCallback, PaidToolConfig } from './mcp/tool-config.js';

declare module '@modelcontextprotocol/sdk/server/mcp.js' {
  interface McpServer {
    /** payrouter: a `price` makes the tool paid once a PayRouter is installed on this server. */
    registerTool<
      OutputArgs extends ZodRawShapeCompat | AnySchema,
      InputArgs extends undefined | ZodRawShapeCompat | AnySchema = undefined,
    >(
      name: string,
      config: PaidToolConfig<OutputArgs, InputArgs>,
      cb: PaidToolCallback<InputArgs>,
    ): RegisteredTool;
  }
}
