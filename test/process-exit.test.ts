import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** Liveness bound, counted from the child's last close(): a healthy child exits a moment later. */
const EXIT_BOUND_MS = 20_000;
/** Start-up (tsx compiling on a busy machine) plus the paid call; only there to never leak a child. */
const RUN_BOUND_MS = 40_000;

interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The child reported everything closed but was still running EXIT_BOUND_MS later. */
  stuckAfterClose: boolean;
}

/** Run the fixture and wait for it to exit by itself; kill it only when a bound passes. */
function runFixture(provider: 'walleot' | 'stripe'): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/exit-after-close.ts', provider],
      {
        cwd: process.cwd(),
        // No provider keys or debug switches from the developer's shell.
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    let stuckAfterClose = false;
    let exitBound: NodeJS.Timeout | undefined;
    const runBound = setTimeout(() => child.kill('SIGKILL'), RUN_BOUND_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (exitBound === undefined && stdout.includes('closed\n')) {
        exitBound = setTimeout(() => {
          stuckAfterClose = true;
          child.kill('SIGKILL');
        }, EXIT_BOUND_MS);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', (error) => {
      clearTimeout(runBound);
      clearTimeout(exitBound);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(runBound);
      clearTimeout(exitBound);
      resolve({ code, signal, stdout, stderr, stuckAfterClose });
    });
  });
}

describe('the library leaves the process free to exit', () => {
  for (const provider of ['walleot', 'stripe'] as const) {
    it(`after a paid call through ${provider}, closing client, server, router and sandbox ends the process`, async () => {
      const outcome = await runFixture(provider);
      // On a hang the fixture's unref'd diagnostic timer has printed the handles still open.
      const report = `child stderr:\n${outcome.stderr}`;
      expect(outcome.stuckAfterClose, `still running ${EXIT_BOUND_MS} ms after closing; ${report}`).toBe(
        false,
      );
      expect(outcome.stdout, report).toBe('Processed: bye\nclosed\n');
      expect(outcome.code, report).toBe(0);
    }, 60_000);
  }
});
