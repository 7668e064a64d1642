import type { Reporter, TestModule } from "vitest/node";

/**
 * Ends every run with one plain line `N passed, N failed, N skipped` that CI reads.
 * Errors outside tests (a file that fails to import, an unhandled rejection) count as failures,
 * and a run that executed no test at all is reported as one failure.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      let tests = 0;
      for (const test of mod.children.allTests()) {
        tests++;
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
      // A module that failed to load has no tests but still failed.
      if (tests === 0 && mod.state() === "failed") failed++;
    }
    failed += unhandledErrors.length;
    if (passed + failed === 0) {
      failed = 1;
      process.stdout.write("no test was executed\n");
      process.exitCode = 1;
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
