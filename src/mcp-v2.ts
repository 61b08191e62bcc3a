// The `payrouter/mcp-v2` entry point: payrouter on the v2 MCP SDK (`@modelcontextprotocol/server`,
// protocol 2026-07-28 and the 2025 eras it still serves). The only code that imports the v2 SDK.
export { type InstallV2Options, installV2, type SubjectResolverV2 } from './mcp-v2/install.js';
export { REQUEST_STATE_ERROR_META_KEY } from './mcp-v2/refusals.js';
export { isPayrouterRequestState } from './mcp-v2/request-state.js';
export type {
  PaidMcpServerV2,
  PaidRegisterToolV2,
  PaidToolCallbackV2,
  PaidToolConfigV2,
  PaidToolContextV2,
  ToolArgsV2,
  ToolPriceV2,
} from './mcp-v2/types.js';
