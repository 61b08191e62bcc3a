import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import { newOpaqueId } from '../core/ids.js';

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** Custom subject resolution; return undefined to fall back to the default order. */
export type SubjectResolver = (extra: ToolExtra) => string | undefined;

const connectionIds = new WeakMap<McpServer, { id: string; subject: string }>();

/**
 * Who pays: the authenticated user (`authInfo.extra.sub`, put there by the server's token
 * verifier), else the MCP session, else this connection (an McpServer serves exactly one).
 * `authInfo.clientId` names the client program, not the person, so it is never used.
 *
 * An HTTP request with no session is stateless Streamable HTTP: a new server and connection per
 * request, so "this connection" is a new payer every time. Such callers are pooled per tool
 * (`request:tool:<tool>/<id>`), as anonymous stateless callers of protocol 2026-07-28 are: the
 * tool's bound on open payments and its allowance and caps are theirs together.
 */
export function resolveSubject(
  server: McpServer,
  extra: ToolExtra,
  custom?: SubjectResolver,
  tool?: string,
): string {
  const fromOption = custom?.(extra);
  if (typeof fromOption === 'string' && fromOption.length > 0) return `custom:${fromOption}`;
  const sub = extra.authInfo?.extra?.['sub'];
  if (typeof sub === 'string' && sub.length > 0) return `user:${sub}`;
  if (extra.sessionId) return `session:${extra.sessionId}`;
  let connection = connectionIds.get(server);
  if (connection === undefined) {
    const id = newOpaqueId('conn');
    // The subject string is made once per connection: the same string on every call keeps its hash
    // for the maps keyed by subject.
    connection = { id, subject: `connection:${id}` };
    connectionIds.set(server, connection);
  }
  if (extra.requestInfo !== undefined && tool !== undefined) return `request:tool:${tool}/${connection.id}`;
  return connection.subject;
}
