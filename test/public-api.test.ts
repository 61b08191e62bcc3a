// The published declarations show the public API only: no engine internals leak into dist/*.d.ts.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dist = join(import.meta.dirname, '..', 'dist');

describe('dist declarations', () => {
  it('name no engine internals', async () => {
    const files = (await readdir(dist)).filter((f) => f.endsWith('.d.ts') || f.endsWith('.d.cts'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const text = await readFile(join(dist, file), 'utf8');
      for (const internal of [
        'RouterCore',
        'PaidCallFlow',
        'PaidCallPipeline',
        'ConfirmationLayer',
        'internals',
      ]) {
        expect(text.includes(internal), `${file} mentions ${internal}`).toBe(false);
      }
    }
  });

  it('the main entry does not augment the SDK: `price` types come from install() or payrouter/augment', async () => {
    const files = (await readdir(dist)).filter((f) => /\.d\.c?ts$/.test(f) && !f.startsWith('augment.'));
    for (const file of files) {
      expect(await readFile(join(dist, file), 'utf8'), file).not.toContain('declare module');
    }
    const augment = await readFile(join(dist, 'augment.d.ts'), 'utf8');
    expect(augment).toContain("declare module '@modelcontextprotocol/sdk/server/mcp.js'");
  });
});
