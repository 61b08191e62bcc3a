// The v2 SDK (protocol 2026-07-28) side of the tests: a v2 Client over Streamable HTTP, in-process
// (fetch straight into a createMcpHandler) or against a real URL, that records what it was asked
// and answers like a user: choose a method, open the link and pay in the sandbox, accept.
import {
  Client,
  type ClientCapabilities,
  type ElicitRequest,
  type ElicitResult,
  StreamableHTTPClientTransport,
} from '@modelcontextprotocol/client';
import type { AuthInfo, McpHttpHandler } from '@modelcontextprotocol/server';
import { payAt } from './paid-server.js';

export type ElicitParams = ElicitRequest['params'];

export interface V2UserOptions {
  /** What the client declares per request: none, form only, URL only, or both. */
  elicitation?: 'none' | 'form' | 'url' | 'form+url';
  /** The answer to a form (method choice); default: accept the first offered method. */
  onForm?: (params: ElicitParams) => ElicitResult | Promise<ElicitResult>;
  /** The answer to a URL request; default: pay at the URL in the sandbox, then accept. */
  onUrl?: (params: ElicitParams) => ElicitResult | Promise<ElicitResult>;
  /** Manual mode: input_required results are returned, not fulfilled. */
  manual?: boolean;
}

function capabilities(elicitation: V2UserOptions['elicitation']): ClientCapabilities {
  switch (elicitation ?? 'form+url') {
    case 'none':
      return {};
    case 'form':
      return { elicitation: { form: {} } };
    case 'url':
      return { elicitation: { url: {} } };
    case 'form+url':
      return { elicitation: { form: {}, url: {} } };
  }
}

/** The first method a form offers (its `oneOf` consts). */
export function offeredMethods(params: ElicitParams): string[] {
  const schema = (
    params as { requestedSchema?: { properties?: Record<string, { oneOf?: Array<{ const: string }> }> } }
  ).requestedSchema;
  return (schema?.properties?.['method']?.oneOf ?? []).map((o) => o.const);
}

export async function payAtUrl(params: ElicitParams): Promise<ElicitResult> {
  await payAt((params as { url: string }).url);
  return { action: 'accept' };
}

/** A v2 client pinned to protocol 2026-07-28 over Streamable HTTP; `fetch` picks where each request goes. */
export async function connectV2(
  fetchImpl: (url: string | URL, init?: RequestInit) => Promise<Response>,
  options: V2UserOptions = {},
) {
  const asked: ElicitParams[] = [];
  const client = new Client(
    { name: 'v2-test-client', version: '1.0.0' },
    {
      capabilities: capabilities(options.elicitation),
      versionNegotiation: { mode: { pin: '2026-07-28' } },
      inputRequired: { autoFulfill: options.manual !== true, maxRounds: 10 },
    },
  );
  if ((options.elicitation ?? 'form+url') !== 'none') {
    client.setRequestHandler('elicitation/create', async (request) => {
      const params = request.params as ElicitParams;
      asked.push(params);
      if ((params as { mode?: string }).mode === 'url') return (options.onUrl ?? payAtUrl)(params);
      if (options.onForm) return options.onForm(params);
      return { action: 'accept', content: { method: offeredMethods(params)[0] ?? '' } };
    });
  }
  await client.connect(
    new StreamableHTTPClientTransport(new URL('http://payrouter.test/mcp'), { fetch: fetchImpl }),
  );
  return { client, asked, close: () => client.close() };
}

/** fetch straight into an in-process handler, as if over HTTP; optional auth per request. */
export function inProcessFetch(handler: McpHttpHandler, authInfo?: () => AuthInfo | undefined) {
  return async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const auth = authInfo?.();
    return handler.fetch(new Request(url, init), auth ? { authInfo: auth } : {});
  };
}

export function userAuth(sub: string): AuthInfo {
  return { token: `user-${sub}`, clientId: 'test', scopes: [], extra: { sub } };
}
