// The Tasks extension (io.modelcontextprotocol/tasks) on the v2 path, spoken by a raw JSON-RPC
// client over HTTP into createMcpHandler (the v2 Client rejects `resultType: 'task'`): the method
// choice and the link go out as input requests, and once the payer has accepted the link the
// call becomes a task, `working` until paid and `completed` with the tool's result. Two routers
// share one store and the requests alternate between them: nothing is kept in a process.
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { memoryStore, PayRouter, silentLogger } from '../src/index.js';
import { installV2 } from '../src/mcp-v2.js';
import { type Sandbox, startSandbox } from '../src/sandbox.js';
import { payAt } from './support/paid-server.js';
import { rawRpc, TASKS_EXTENSION } from './support/v2-raw.js';
import { userAuth } from './support/v2-world.js';

let sandbox: Sandbox;
const store = memoryStore();
const routers: PayRouter[] = [];
const handlers: Array<ReturnType<typeof createMcpHandler>> = [];
const runs: string[] = [];

beforeAll(async () => {
  sandbox = await startSandbox();
  for (let i = 0; i < 2; i++) {
    const providers = sandbox.providers({ logger: silentLogger });
    const router = new PayRouter({
      providers: [providers.walleot, providers.stripe],
      store,
      logger: silentLogger,
      requestStateKey: 'tasks-request-state-key-0123456789abcdef01',
      timeouts: { paymentWaitMs: 300 },
    });
    routers.push(router);
    handlers.push(
      createMcpHandler(() => {
        const server = installV2(router, new McpServer({ name: 'tasks', version: '1.0.0' }));
        server.registerTool(
          'report',
          {
            inputSchema: z.object({ topic: z.string() }),
            price: { amount: '2.00', currency: 'USD' },
          },
          async ({ topic }) => {
            runs.push(topic);
            return { content: [{ type: 'text', text: `Report on ${topic}` }] };
          },
        );
        return server;
      }),
    );
  }
});
afterAll(async () => {
  await Promise.all(handlers.map((h) => h.close()));
  await Promise.all(routers.map((r) => r.close()));
  await store.close();
  await sandbox.close();
});

type Json = Record<string, unknown>;
let nextHandler = 0;

/** One raw request, to the other router than the last one; `sub` signs it in. */
const rpc = (method: string, params: Json, options: { tasks?: boolean; sub?: string } = {}) => {
  const handler = handlers[nextHandler++ % handlers.length]!;
  return rawRpc(
    (request) => handler.fetch(request, options.sub ? { authInfo: userAuth(options.sub) } : {}),
    method,
    params,
    options.tasks === undefined ? {} : { tasks: options.tasks },
  );
};

const callReport = (topic: string, extra: Json = {}, options: { tasks?: boolean; sub?: string } = {}) =>
  rpc('tools/call', { name: 'report', arguments: { topic }, ...extra }, options);

/** Choose the method by form, accept the link without paying yet: the answer that makes a task. */
async function untilAccepted(topic: string, method: string, options: { tasks?: boolean; sub?: string } = {}) {
  const first = (await callReport(topic, {}, options)).result!;
  expect(first.resultType).toBe('input_required');
  expect(Object.keys(first.inputRequests ?? {})).toEqual(['payrouter_method']);
  const link = (
    await callReport(
      topic,
      {
        inputResponses: { payrouter_method: { action: 'accept', content: { method } } },
        requestState: first.requestState,
      },
      options,
    )
  ).result!;
  expect(link.resultType).toBe('input_required');
  const url = link.inputRequests!['payrouter_payment']!.params.url as string;
  const accepted = await callReport(
    topic,
    { inputResponses: { payrouter_payment: { action: 'accept' } }, requestState: link.requestState },
    options,
  );
  return { url, accepted };
}

describe('Tasks: a paid call waiting for its payment is a task', () => {
  it('working until paid, then completed with the result; the tool runs once', async () => {
    const { url, accepted } = await untilAccepted('tides', 'walleot');
    const task = accepted.result!;
    expect(task).toMatchObject({ resultType: 'task', status: 'working' });
    expect(task.taskId).toMatch(/^payrouter\.task1\./);
    expect(typeof task.createdAt).toBe('string');
    expect(typeof task.lastUpdatedAt).toBe('string');
    expect(task.ttlMs).toBeGreaterThan(0);
    expect(task.pollIntervalMs).toBeGreaterThan(0);

    const waiting = (await rpc('tasks/get', { taskId: task.taskId })).result!;
    expect(waiting).toMatchObject({ resultType: 'complete', taskId: task.taskId, status: 'working' });
    expect(runs.filter((r) => r === 'tides')).toHaveLength(0);
    // An answer to nothing asked is acknowledged and ignored.
    const ack = await rpc('tasks/update', {
      taskId: task.taskId,
      inputResponses: { other: { action: 'accept' } },
    });
    expect(ack.error).toBeUndefined();

    await payAt(url);
    const done = (await rpc('tasks/get', { taskId: task.taskId })).result!;
    expect(done).toMatchObject({ status: 'completed', taskId: task.taskId });
    expect(done.result?.content).toEqual([{ type: 'text', text: 'Report on tides' }]);
    expect(done.result?.isError ?? false).toBe(false);
    const again = (await rpc('tasks/get', { taskId: task.taskId })).result!;
    expect(again.status).toBe('completed');
    expect(again.result?.content).toEqual(done.result?.content);
    expect(runs.filter((r) => r === 'tides')).toHaveLength(1);
  });

  it('is cancelled by tasks/cancel: nothing runs, nothing is charged', async () => {
    const { url, accepted } = await untilAccepted('canceled', 'stripe');
    const { taskId } = accepted.result!;
    expect((await rpc('tasks/cancel', { taskId })).error).toBeUndefined();
    const after = (await rpc('tasks/get', { taskId })).result!;
    expect(after.status, JSON.stringify(after)).toBe('cancelled');
    expect(runs).not.toContain('canceled');
    // The checkout was withdrawn: paying at it now changes nothing.
    await payAt(url);
    expect((await rpc('tasks/get', { taskId })).result?.status).toBe('cancelled');
    expect(runs).not.toContain('canceled');
  });

  it("is only its payer's: another payer, an altered or an unknown task id gets -32602", async () => {
    const { accepted } = await untilAccepted('private', 'walleot', { sub: 'alice' });
    const taskId = accepted.result!.taskId!;
    expect((await rpc('tasks/get', { taskId }, { sub: 'alice' })).result?.status).toBe('working');
    const flipped = `${taskId.slice(0, 20)}${taskId[20] === 'A' ? 'B' : 'A'}${taskId.slice(21)}`;
    for (const [id, sub] of [
      [taskId, 'bob'],
      [taskId, undefined],
      [flipped, 'alice'],
      ['payrouter.task1.nothing.here', 'alice'],
    ] as const) {
      for (const method of ['tasks/get', 'tasks/update', 'tasks/cancel']) {
        const answer = await rpc(
          method,
          { taskId: id, ...(method === 'tasks/update' ? { inputResponses: {} } : {}) },
          sub ? { sub } : {},
        );
        expect(answer.error?.code, `${method} ${sub}`).toBe(-32602);
      }
    }
    expect((await rpc('tasks/get', { taskId }, { sub: 'alice' })).result?.status).toBe('working');
  });

  it('without the extension declared, the same call waits (bounded) and answers payment-required, as before', async () => {
    const { accepted } = await untilAccepted('plain', 'walleot', { tasks: false });
    expect(accepted.result!.resultType).toBe('complete');
    expect(accepted.result!.isError).toBe(true);
    expect(accepted.result!.taskId).toBeUndefined();
  });

  it('server/discover declares the extension', async () => {
    const discover = (await rpc('server/discover', {})).result!;
    expect(discover.capabilities?.extensions?.[TASKS_EXTENSION]).toEqual({});
  });
});
