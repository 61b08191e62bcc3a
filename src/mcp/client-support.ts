import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ClientSupport } from '../core/route/route.js';

/**
 * What the connected client declared at initialize. `elicitation: {}` is the 2025-06-18 form of
 * "form only". A stateless HTTP server knows nothing, so it gets neither.
 */
export function clientSupport(server: McpServer): ClientSupport {
  const elicitation = server.server.getClientCapabilities()?.elicitation as
    | { form?: unknown; url?: unknown }
    | undefined;
  if (elicitation === undefined) return { form: false, url: false };
  const url = elicitation.url !== undefined;
  const form = elicitation.form !== undefined || !url;
  return { form, url };
}
