// The closing line CI reads must never say 0 failed on a red run. This runs vitest on a suite
// broken on purpose (test/fixtures/broken-suite: a failing test, a file whose setup fails, failing
// describe-level hooks, a file that cannot load, an unhandled rejection) and reads the line.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/tools.js';

const run = promisify(execFile);
const VITEST = join(REPO_ROOT, 'node_modules/vitest/vitest.mjs');

async function runVitest(args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [VITEST, 'run', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    });
    return { code: 0, stdout };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '' };
  }
}

const lastLine = (stdout: string) => stdout.trimEnd().split('\n').at(-1);
const CONFIG = 'test/fixtures/broken-suite/vitest.config.ts';

describe('summary reporter', () => {
  it('counts failed files, failed hooks and unhandled errors as failures, and reports skips', async () => {
    const { code, stdout } = await runVitest(['--config', CONFIG]);
    expect(code).toBe(1);
    // passed: 2 (plain) + 2 (suite-hook-fails) + 1 (unhandled)
    // failed: 1 test (plain) + 1 file whose beforeAll failed + 2 describe hooks + 1 file that
    //         cannot load + 1 unhandled rejection
    // skipped: 1 skip + 1 todo (plain) + 2 behind the file's setup + 1 behind the describe's setup
    expect(lastLine(stdout)).toBe('5 passed, 6 failed, 5 skipped');
  }, 60_000);

  it('reads 0 failed only on a green run', async () => {
    const { code, stdout } = await runVitest([
      '--config',
      CONFIG,
      'test/fixtures/broken-suite/plain.spec.ts',
      '-t',
      '^passes',
    ]);
    expect(code).toBe(0);
    // The -t filter skips the failing test, the skip and the todo.
    expect(lastLine(stdout)).toBe('2 passed, 0 failed, 3 skipped');
  }, 60_000);

  it('counts a file whose setup failed even when nothing else is wrong', async () => {
    const { code, stdout } = await runVitest([
      '--config',
      CONFIG,
      'test/fixtures/broken-suite/setup-fails.spec.ts',
    ]);
    expect(code).toBe(1);
    expect(lastLine(stdout)).toBe('0 passed, 1 failed, 2 skipped');
  }, 60_000);
});
