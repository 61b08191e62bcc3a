// examples/stateless-v2.ts in two processes sharing one redis-server and the sandbox: the v2 Client
// (protocol 2026-07-28) over stateless Streamable HTTP, its requests alternating between the two,
// pays through input requests; echoed requestState is single use and bound to its payer; a raw
// JSON-RPC client with the Tasks extension gets a task that any process completes; a 1.x client
// is still served.

import { spawn } from 'node:child_process';
import {
  type CallToolResult,
  Client,
  type InputRequiredResult,
  isInputRequiredResult,
  StreamableHTTPClientTransport,
} from '@modelcontextprotocol/client';
import { Client as LegacyClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as LegacyHttpTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAYMENT_META_KEY, type PaymentInfo } from '../src/index.js';
import { RequestStateSealer } from '../src/mcp-v2/request-state.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { endpointsOf, waitUntil } from './support/instances.js';
import { payAt, textOf } from './support/paid-server.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';
import { spawnV2Instance, type V2Instance } from './support/v2-instances.js';
import { rawRpc } from './support/v2-raw.js';
import { connectV2, offeredMethods } from './support/v2-world.js';

const KEY = 'stateless-test-key-0123456789abcdef0123456789';
const TOOL = 'generate_report';

let redisServer: RedisServer;
let redis: Redis;
let sandbox: Sandbox;
let a: V2Instance;
let b: V2Instance;

beforeAll(async () => {
  redisServer = await startRedisServer();
  redis = new Redis(redisServer.url);
  sandbox = await startSandbox();
  const common = { redisUrl: redisServer.url, requestStateKey: KEY, sandbox: endpointsOf(sandbox) };
  [a, b] = await Promise.all([
    spawnV2Instance({ name: 'A', ...common }),
    spawnV2Instance({ name: 'B', ...common }),
  ]);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  redis?.disconnect();
  await sandbox?.close();
  await redisServer?.stop();
});

/** Provider payments created so far, on both stand-ins: a charge can only come from one of these. */
function paymentsCreated(): number {
  const walleot = sandbox.walleot.requests.entries.filter(
    (r) => r.method === 'POST' && /\/sessions$/.test(r.path),
  );
  const stripe = sandbox.stripe.requests.entries.filter(
    (r) => r.method === 'POST' && r.path === '/v1/checkout/sessions',
  );
  return walleot.length + stripe.length;
}

const runsOf = async (topic: string) => Number((await redis.get(`test:runs:${TOOL}:${topic}`)) ?? 0);

/**
 * A load balancer that sends each request to the other process than the last one, and remembers
 * where each tools/call went. `user` signs the requests in (bearer `user-<name>`), or not.
 */
function alternating(user?: string) {
  const targets = [a, b];
  let next = 0;
  const toolCallsOn: string[] = [];
  const fetchImpl = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const target = targets[next % 2]!;
    next += 1;
    const headers = new Headers(init?.headers);
    if (user) headers.set('authorization', `Bearer user-${user}`);
    if (headers.get('mcp-method') === 'tools/call') toolCallsOn.push(target.name);
    const path = new URL(url).pathname;
    return fetch(new URL(path, target.url), { ...init, headers });
  };
  return { fetchImpl, toolCallsOn };
}

const paymentOf = (r: { _meta?: Record<string, unknown> }) =>
  r._meta?.[PAYMENT_META_KEY] as PaymentInfo | undefined;
const errorReason = (r: CallToolResult) =>
  (r._meta?.['payrouter/error'] as { reason?: string } | undefined)?.reason;

/** One manual round of a tools/call: the result, or the input-required answer as it came. */
async function round(
  client: Client,
  args: Record<string, unknown>,
  retry?: { inputResponses: Record<string, unknown>; requestState: string },
): Promise<CallToolResult | InputRequiredResult> {
  return (await client.request(
    { method: 'tools/call', params: { name: TOOL, arguments: args, ...(retry ?? {}) } },
    { allowInputRequired: true },
  )) as CallToolResult | InputRequiredResult;
}

async function manualClient(user?: string) {
  const route = alternating(user);
  const client = new Client(
    { name: `manual-${user ?? 'anonymous'}`, version: '1.0.0' },
    {
      capabilities: { elicitation: { form: {}, url: {} } },
      versionNegotiation: { mode: { pin: '2026-07-28' } },
      inputRequired: { autoFulfill: false },
    },
  );
  await client.connect(
    new StreamableHTTPClientTransport(new URL('http://lb.test/mcp'), { fetch: route.fetchImpl }),
  );
  return { client, route };
}

function asInputRequired(result: CallToolResult | InputRequiredResult): InputRequiredResult {
  if (!isInputRequiredResult(result))
    throw new Error(`expected input_required, got ${JSON.stringify(result)}`);
  return result;
}

/** Alice pays for one report by hand: choose Walleot, open and pay the link, accept. */
async function alicePays(topic: string) {
  const { client, route } = await manualClient('alice');
  const choose = asInputRequired(await round(client, { topic }));
  const chooseState = choose.requestState!;
  expect(Object.keys(choose.inputRequests ?? {})).toEqual(['payrouter_method']);
  const link = asInputRequired(
    await round(
      client,
      { topic },
      {
        inputResponses: { payrouter_method: { action: 'accept', content: { method: 'walleot' } } },
        requestState: chooseState,
      },
    ),
  );
  const urlState = link.requestState!;
  const request = link.inputRequests?.['payrouter_payment'] as { params?: { mode?: string; url?: string } };
  expect(request.params?.mode).toBe('url');
  await payAt(request.params!.url!);
  const accepted = { payrouter_payment: { action: 'accept' } };
  const done = (await round(
    client,
    { topic },
    { inputResponses: accepted, requestState: urlState },
  )) as CallToolResult;
  return { client, route, chooseState, urlState, accepted, done, paymentId: paymentOf(link)!.payment_id };
}

describe('examples/stateless-v2.ts: two processes, one Redis, the v2 Client', () => {
  it('chooses by form, pays by URL, retries with answers: the tool runs once, rounds alternate processes', async () => {
    const route = alternating();
    const user = await connectV2(route.fetchImpl);
    try {
      const result = (await user.client.callTool({
        name: TOOL,
        arguments: { topic: 'tides' },
      })) as CallToolResult;
      expect(textOf(result), JSON.stringify(result)).toMatch(/^Report on tides: all is well/);
      expect(user.asked.map((q) => (q as { mode?: string }).mode ?? 'form')).toEqual(['form', 'url']);
      expect(offeredMethods(user.asked[0]!).sort()).toEqual(['stripe', 'walleot']);
      expect(await runsOf('tides')).toBe(1);
      // Three rounds of one call: first, with the choice, with the link's answer; never twice in a row on one process.
      expect(route.toolCallsOn).toHaveLength(3);
      for (let i = 1; i < route.toolCallsOn.length; i++)
        expect(route.toolCallsOn[i]).not.toBe(route.toolCallsOn[i - 1]);
      expect(paymentOf(result)).toMatchObject({ status: 'paid', amount: '2.00' });
    } finally {
      await user.close();
    }
  });

  it('answers a replayed requestState of its payer with the stored result, charging and running nothing', async () => {
    const paid = await alicePays('replayed');
    expect(textOf(paid.done)).toMatch(/^Report on replayed/);
    expect(await runsOf('replayed')).toBe(1);
    const created = paymentsCreated();

    // The reply was lost; the client sends the same retry again, to the other process.
    const again = (await round(
      paid.client,
      { topic: 'replayed' },
      {
        inputResponses: paid.accepted,
        requestState: paid.urlState,
      },
    )) as CallToolResult;
    expect(textOf(again)).toBe(textOf(paid.done));
    // An earlier round's state of the same call: the same answer.
    const earlier = (await round(
      paid.client,
      { topic: 'replayed' },
      {
        inputResponses: { payrouter_method: { action: 'accept', content: { method: 'stripe' } } },
        requestState: paid.chooseState,
      },
    )) as CallToolResult;
    expect(textOf(earlier)).toBe(textOf(paid.done));
    expect(await runsOf('replayed')).toBe(1);
    expect(paymentsCreated()).toBe(created);
    await paid.client.close();
  });

  it('refuses another payer, a tampered and an expired requestState: nothing runs, nothing is charged', async () => {
    const paid = await alicePays('guarded');
    const created = paymentsCreated();
    const retry = (requestState: string) => ({ inputResponses: paid.accepted, requestState });

    const bob = await manualClient('bob');
    const anonymous = await manualClient();
    const refusals: Array<[string, CallToolResult]> = [];
    refusals.push([
      'other_subject',
      (await round(bob.client, { topic: 'guarded' }, retry(paid.urlState))) as CallToolResult,
    ]);
    refusals.push([
      'other_subject',
      (await round(anonymous.client, { topic: 'guarded' }, retry(paid.urlState))) as CallToolResult,
    ]);

    // One character of the sealed body changed.
    const [prefix, body, mac] = [
      paid.urlState.slice(0, 14),
      paid.urlState.slice(14, paid.urlState.lastIndexOf('.')),
      paid.urlState.slice(paid.urlState.lastIndexOf('.')),
    ];
    const flipped = `${prefix}${body.slice(0, 5)}${body[5] === 'A' ? 'B' : 'A'}${body.slice(6)}${mac}`;
    refusals.push([
      'mac',
      (await round(paid.client, { topic: 'guarded' }, retry(flipped))) as CallToolResult,
    ]);

    // Sealed with the servers' key, for this very payment and payer, but past its time.
    const sealed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { a: string };
    const expired = new RequestStateSealer(new TextEncoder().encode(KEY)).seal(
      {
        intentId: paid.paymentId,
        tool: TOOL,
        argsHash: sealed.a,
        step: { kind: 'choose' },
        expiresAt: Date.now() - 1,
      },
      'user:alice',
    ).state;
    refusals.push([
      'expired',
      (await round(paid.client, { topic: 'guarded' }, retry(expired))) as CallToolResult,
    ]);
    // Alice's state for another call (other arguments).
    refusals.push([
      'other_call',
      (await round(paid.client, { topic: 'other' }, retry(paid.urlState))) as CallToolResult,
    ]);

    for (const [reason, result] of refusals) {
      expect(isInputRequiredResult(result), JSON.stringify(result)).toBe(false);
      expect(result.isError, textOf(result)).toBe(true);
      expect(errorReason(result)).toBe(reason);
      expect(textOf(result)).toContain('Nothing ran and nothing was charged');
      expect(textOf(result)).not.toMatch(/Report on/);
    }
    expect(await runsOf('guarded')).toBe(1);
    expect(await runsOf('other')).toBe(0);
    expect(paymentsCreated()).toBe(created);
    await Promise.all([paid.client.close(), bob.client.close(), anonymous.client.close()]);
  });

  it('refuses a redeemed requestState whose call has not run, and asks nothing new', async () => {
    const { client } = await manualClient('carol');
    const choose = asInputRequired(await round(client, { topic: 'twice' }));
    const answer = { payrouter_method: { action: 'accept', content: { method: 'walleot' } } };
    const link = asInputRequired(
      await round(client, { topic: 'twice' }, { inputResponses: answer, requestState: choose.requestState! }),
    );
    expect(link.inputRequests?.['payrouter_payment']).toBeDefined();
    const created = paymentsCreated();
    const replay = (await round(
      client,
      { topic: 'twice' },
      {
        inputResponses: answer,
        requestState: choose.requestState!,
      },
    )) as CallToolResult;
    expect(errorReason(replay)).toBe('used');
    expect(textOf(replay)).toContain(`confirm_payment with payment_id "${paymentOf(link)!.payment_id}"`);
    expect(paymentsCreated()).toBe(created);
    expect(await runsOf('twice')).toBe(0);
    await client.close();
  });
});

describe('examples/stateless-v2.ts: Tasks across the processes', () => {
  it('a call whose payer accepted the link is a task on whichever process: working, paid, completed once', async () => {
    const targets = [a, b];
    let next = 0;
    const served: string[] = [];
    const send = async (request: Request) => {
      const target = targets[next++ % 2]!;
      served.push(target.name);
      return fetch(target.url, { method: 'POST', headers: request.headers, body: await request.text() });
    };
    const call = (extra: Record<string, unknown> = {}) =>
      rawRpc(send, 'tools/call', { name: TOOL, arguments: { topic: 'tasked' }, ...extra });
    const choose = (await call()).result!;
    const link = (
      await call({
        inputResponses: { payrouter_method: { action: 'accept', content: { method: 'walleot' } } },
        requestState: choose.requestState,
      })
    ).result!;
    const url = link.inputRequests!['payrouter_payment']!.params.url;
    const task = (
      await call({
        inputResponses: { payrouter_payment: { action: 'accept' } },
        requestState: link.requestState,
      })
    ).result!;
    expect(task).toMatchObject({ resultType: 'task', status: 'working' });
    const taskId = task.taskId!;
    expect((await rawRpc(send, 'tasks/get', { taskId })).result?.status).toBe('working');
    await payAt(url);
    const done = (await rawRpc(send, 'tasks/get', { taskId })).result!;
    expect(done.status, JSON.stringify(done)).toBe('completed');
    expect(textOf(done.result as CallToolResult)).toMatch(/^Report on tasked: all is well/);
    expect((await rawRpc(send, 'tasks/get', { taskId })).result?.status).toBe('completed');
    expect(await runsOf('tasked')).toBe(1);
    expect(new Set(served)).toEqual(new Set(['A', 'B']));
  });
});

describe('examples/stateless-v2.ts: 1.x clients', () => {
  it('serves a 1.x client with elicitation on a session: form choice, URL link, paid, run once', async () => {
    const client = new LegacyClient(
      { name: 'legacy-client', version: '1.0.0' },
      { capabilities: { elicitation: { form: {}, url: {} } } },
    );
    const asked: string[] = [];
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      const params = request.params as { mode?: string; url?: string };
      asked.push(params.mode ?? 'form');
      if (params.mode === 'url') {
        await payAt(params.url!);
        return { action: 'accept' };
      }
      return { action: 'accept', content: { method: 'stripe' } };
    });
    await client.connect(new LegacyHttpTransport(new URL(a.url)));
    try {
      const result = (await client.callTool({
        name: TOOL,
        arguments: { topic: 'legacy' },
      })) as CallToolResult;
      expect(textOf(result), JSON.stringify(result)).toMatch(/^Report on legacy/);
      expect(asked).toEqual(['form', 'url']);
      expect(await runsOf('legacy')).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('gives a 1.x client without elicitation the payment-required result and confirm_payment', async () => {
    const client = new LegacyClient({ name: 'legacy-plain', version: '1.0.0' });
    await client.connect(new LegacyHttpTransport(new URL(b.url)));
    try {
      const required = (await client.callTool({
        name: TOOL,
        arguments: { topic: 'plain' },
      })) as CallToolResult;
      expect(required.isError).toBe(true);
      const payment = paymentOf(required)!;
      expect(payment.payment_url).toBeTruthy();
      await payAt(payment.payment_url!);
      const done = (await client.callTool({
        name: 'confirm_payment',
        arguments: { payment_id: payment.payment_id, method: null },
      })) as CallToolResult;
      expect(textOf(done)).toMatch(/^Report on plain/);
      expect(await runsOf('plain')).toBe(1);
    } finally {
      await client.close();
    }
  });
});

describe('examples/stateless-v2.ts from its command line', () => {
  const run = (env: Record<string, string>) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/stateless-v2.ts'], {
      cwd: process.cwd(),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, stderr: () => stderr, exited };
  };

  it('will not start without a REQUEST_STATE_KEY of 32 characters', async () => {
    const cli = run({ REDIS_URL: redisServer.url, REQUEST_STATE_KEY: 'short' });
    expect(await cli.exited).toBe(1);
    expect(cli.stderr()).toContain('Set REQUEST_STATE_KEY to a secret of at least 32 characters');
  });

  it('serves a paid call to the v2 Client with its own sandbox, as its header says', async () => {
    const cli = run({ REDIS_URL: redisServer.url, REQUEST_STATE_KEY: KEY, PORT: '0' });
    try {
      await waitUntil(() => /MCP at (\S+)/.test(cli.stderr()), 'the example to serve', 30_000);
      const url = /MCP at (\S+)/.exec(cli.stderr())![1]!;
      const user = await connectV2((_url, init) => fetch(url, init));
      try {
        const result = (await user.client.callTool({
          name: TOOL,
          arguments: { topic: 'from the command line' },
        })) as CallToolResult;
        expect(textOf(result), JSON.stringify(result)).toMatch(
          /^Report on from the command line: all is well/,
        );
        expect(user.asked.map((q) => (q as { mode?: string }).mode ?? 'form')).toEqual(['form', 'url']);
      } finally {
        await user.close();
      }
    } finally {
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
    }
  });
});
