// A raw JSON-RPC client of protocol 2026-07-28 over HTTP, for what the v2 Client does not speak
// (it rejects `resultType: 'task'`): the envelope in `_meta`, the Mcp-* headers, JSON or SSE answers.

export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';

/** The fields of results and tasks the tests read. */
export interface RawAnswer {
  resultType?: string;
  requestState?: string;
  inputRequests?: Record<string, { params: { url: string } }>;
  isError?: boolean;
  content?: unknown[];
  taskId?: string;
  status?: string;
  statusMessage?: string;
  createdAt?: string;
  lastUpdatedAt?: string;
  ttlMs?: number | null;
  pollIntervalMs?: number;
  result?: { content: unknown[]; isError?: boolean };
  capabilities?: { extensions?: Record<string, unknown> };
}

export interface RawResponse {
  id: number;
  result?: RawAnswer;
  error?: { code: number; message: string };
}

export interface RawOptions {
  /** Declare the Tasks extension (default true), beside form and URL elicitation. */
  tasks?: boolean;
  /** Bearer token sent as `authorization`. */
  bearer?: string;
}

let nextId = 0;

/** One request; `send` delivers it (an in-process handler's fetch, or a fetch to a URL). */
export async function rawRpc(
  send: (request: Request) => Promise<Response>,
  method: string,
  params: Record<string, unknown>,
  options: RawOptions = {},
): Promise<RawResponse> {
  const capabilities = {
    elicitation: { form: {}, url: {} },
    ...(options.tasks === false ? {} : { extensions: { [TASKS_EXTENSION]: {} } }),
  };
  const id = ++nextId;
  const body = {
    jsonrpc: '2.0',
    id,
    method,
    params: {
      ...params,
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientCapabilities': capabilities,
        'io.modelcontextprotocol/clientInfo': { name: 'raw-json-rpc', version: '1.0.0' },
      },
    },
  };
  const name = method === 'tools/call' ? params['name'] : params['taskId'];
  const response = await send(
    new Request('http://payrouter.test/mcp', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': method,
        ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
        ...(options.bearer ? { authorization: `Bearer ${options.bearer}` } : {}),
      },
      body: JSON.stringify(body),
    }),
  );
  const text = await response.text();
  const sse = response.headers.get('content-type')?.includes('text/event-stream');
  const json = JSON.parse(
    sse
      ? (text
          .split('\n')
          .filter((line) => line.startsWith('data: '))
          .at(-1)
          ?.slice(6) ?? '{}')
      : text,
  ) as RawResponse;
  if (json.id !== id) throw new Error(`answer to request ${id} has id ${json.id}: ${text.slice(0, 200)}`);
  return json;
}
