import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

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
