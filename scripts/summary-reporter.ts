import type { Reporter, TestModule } from "vitest/node";

/**
 * Ends every run with one plain line `N passed, N failed, N skipped` that CI reads.
 * Errors outside tests (a file that fails to import, a failing hook, an unhandled rejection) count
 * as failures,
 * and a run that executed no test at all is reported as one failure.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      let failedTests = 0;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failedTests++;
        else skipped++;
      }
      // A module that failed without a failing test (import error, a throwing beforeAll/afterAll)
      // still failed: its tests show up as skipped or passed, so count the module itself.
      if (failedTests === 0 && mod.state() === "failed") failedTests = 1;
      failed += failedTests;
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
