import type { Reporter, SerializedError, TestModule, TestRunEndReason } from 'vitest/node';

export interface RunCounts {
  passed: number;
  failed: number;
  skipped: number;
}

/**
 * Counts a finished run so that a red run never reads `0 failed`: a failed test counts once, and
 * so does every error raised outside a test (a file that cannot load, a failing `beforeAll` or
 * `afterAll` of a file or a `describe`), every unhandled error, and a failed file or run with no
 * error to show for it. Tests that never ran (`.skip`, `.todo`, or behind a failed setup) are skipped.
 */
export function countRun(
  testModules: ReadonlyArray<TestModule>,
  unhandledErrors: ReadonlyArray<SerializedError | unknown>,
  reason: TestRunEndReason,
): RunCounts {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const module of testModules) {
    let failedHere = module.errors().length;
    for (const suite of module.children.allSuites()) failedHere += suite.errors().length;
    for (const test of module.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') passed += 1;
      else if (state === 'failed') failedHere += 1;
      else if (state === 'skipped') skipped += 1;
    }
    if (failedHere === 0 && module.state() === 'failed') failedHere = 1;
    failed += failedHere;
  }
  failed += unhandledErrors.length;
  if (failed === 0 && reason !== 'passed') failed = 1;
  return { passed, failed, skipped };
}

/** Ends the run with the plain line CI reads, alone on the last line: `N passed, N failed, N skipped`. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
    reason: TestRunEndReason,
  ): void {
    const { passed, failed, skipped } = countRun(testModules, unhandledErrors, reason);
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
