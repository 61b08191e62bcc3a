import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ToolExtra } from './subject.js';

export type DeliveryAnswer = 'accepted' | 'declined' | 'canceled';

/**
 * URL-mode elicitation: the client opens the payment link for the user. `accept` only means the
 * user agreed to open it, not that they paid; payment is confirmed separately.
 */
export async function deliverLinkByUrl(
  server: McpServer,
  extra: ToolExtra,
  options: { message: string; url: string; elicitationId: string; timeoutMs: number },
): Promise<DeliveryAnswer> {
  const result = await server.server.elicitInput(
    { mode: 'url', message: options.message, url: options.url, elicitationId: options.elicitationId },
    { relatedRequestId: extra.requestId, signal: extra.signal, timeout: options.timeoutMs },
  );
  return answerOf(result.action);
}

/**
 * The opt-in PayMCP-style form that carries the link in its message (`flow: 'elicitation'`), for
 * clients with form but no URL mode. The spec advises against links in forms, hence opt-in only.
 */
export async function deliverLinkByForm(
  server: McpServer,
  extra: ToolExtra,
  options: { message: string; timeoutMs: number },
): Promise<DeliveryAnswer> {
  const result = await server.server.elicitInput(
    {
      mode: 'form',
      message: options.message,
      requestedSchema: {
        type: 'object',
        properties: { paid: { type: 'boolean', title: 'I have completed the payment', default: true } },
      },
    },
    { relatedRequestId: extra.requestId, signal: extra.signal, timeout: options.timeoutMs },
  );
  return answerOf(result.action);
}

function answerOf(action: string): DeliveryAnswer {
  if (action === 'accept') return 'accepted';
  if (action === 'decline') return 'declined';
  return 'canceled';
}
