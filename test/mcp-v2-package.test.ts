import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

// The built payrouter/mcp-v2 entry, loaded by name the way users load it, with the main entry's
// PayRouter: both entries must share the router's package-internal state.
beforeAll(() => {
  if (!existsSync('dist/mcp-v2.js') || !existsSync('dist/mcp-v2.cjs')) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  }
});

const body = (load: (entry: string) => string) => `
  const { PayRouter } = ${load('payrouter')};
  const { installV2, isPayrouterRequestState } = ${load('payrouter/mcp-v2')};
  const { McpServer } = ${load('@modelcontextprotocol/server')};
  const { z } = ${load('zod')};
  const router = new PayRouter({ providers: { walleot: { apiKey: 'k' } }, requestStateKey: 'k'.repeat(32) });
  const server = installV2(router, new McpServer({ name: 'p', version: '1.0.0' }));
  server.registerTool('t', { inputSchema: z.object({}), price: { amount: '1.00', currency: 'USD' } }, async () => ({ content: [] }));
  console.log(JSON.stringify([typeof installV2, isPayrouterRequestState('payrouter.rs1.x.y')]));
  await router.close();
`;

describe('payrouter/mcp-v2 entry point', () => {
  it('loads from ESM and installs a router built by the main entry', async () => {
    const { stdout } = await run(process.execPath, [
      '--input-type=module',
      '-e',
      body((entry) => `await import(${JSON.stringify(entry)})`),
    ]);
    expect(JSON.parse(stdout)).toEqual(['function', true]);
  });

  it('loads from CommonJS and installs a router built by the main entry', async () => {
    const { stdout } = await run(process.execPath, [
      '-e',
      `(async () => { ${body((entry) => `require(${JSON.stringify(entry)})`)} })()`,
    ]);
    expect(JSON.parse(stdout)).toEqual(['function', true]);
  });

  it('ships type declarations for both formats', () => {
    expect(existsSync('dist/mcp-v2.d.ts')).toBe(true);
    expect(existsSync('dist/mcp-v2.d.cts')).toBe(true);
  });
});

// Neither SDK line is forced on the other's users: each entry loads only its own (recorded by
// test/fixtures/record-loads.mjs, which logs every module file a process loads).
describe('payrouter/mcp-v2 loads only the v2 SDK, payrouter only the 1.x one', () => {
  const recorder = resolve('test/fixtures/record-loads.mjs');
  const V1 = /[\\/]node_modules[\\/]@modelcontextprotocol[\\/]sdk[\\/]/;
  const V2 = /[\\/]node_modules[\\/]@modelcontextprotocol[\\/](server|client|core)[\\/]/;
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'payrouter-v2-loads-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const loads = async (code: string, name: string) => {
    const log = join(dir, `${name}.log`);
    await run(process.execPath, ['--import', recorder, '--input-type=module', '-e', code], {
      env: { PATH: process.env.PATH ?? '', PAYROUTER_LOAD_LOG: log },
    });
    return readFileSync(log, 'utf8').split('\n').filter(Boolean);
  };

  it('importing payrouter/mcp-v2 loads no file of @modelcontextprotocol/sdk', async () => {
    const files = await loads(`await import('payrouter/mcp-v2');`, 'v2');
    expect(files.some((f) => V2.test(f))).toBe(true);
    expect(files.filter((f) => V1.test(f))).toEqual([]);
  });

  it('importing payrouter loads no file of the v2 packages', async () => {
    const files = await loads(`await import('payrouter');`, 'v1');
    expect(files.some((f) => V1.test(f))).toBe(true);
    expect(files.filter((f) => V2.test(f))).toEqual([]);
  });
});
