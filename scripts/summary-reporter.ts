import { relative } from "node:path";
import type { Reporter, TestCase, TestModule } from "vitest/node";

/** A test file still running after this long is named on stdout, with its test in progress. */
const SLOW_FILE_MS = 180_000;

/**
 * Ends every run with one plain line `N passed, N failed, N skipped` that CI reads.
 * Errors outside tests (a file that fails to import, a failing hook, an unhandled rejection) count
 * as failures,
 * and a run that executed no test at all is reported as one failure.
 *
 * While the run goes on, every few minutes it names each test file that has been running longer
 * than SLOW_FILE_MS and the test it is in, so that a run stopped from outside (a CI time limit)
 * still says where it was.
 */
export default class SummaryReporter implements Reporter {
  readonly #running = new Map<string, { started: number; test?: string; testStarted?: number }>();
  #watch?: NodeJS.Timeout;

  onTestRunStart(): void {
    this.#watch = setInterval(() => this.#reportSlow(), SLOW_FILE_MS);
    this.#watch.unref();
  }

  onTestModuleStart(testModule: TestModule): void {
    this.#running.set(testModule.moduleId, { started: Date.now() });
  }

  onTestCaseReady(testCase: TestCase): void {
    const entry = this.#running.get(testCase.module.moduleId);
    if (entry) Object.assign(entry, { test: testCase.fullName, testStarted: Date.now() });
  }

  onTestModuleEnd(testModule: TestModule): void {
    this.#running.delete(testModule.moduleId);
  }

  #reportSlow(): void {
    const now = Date.now();
    for (const [moduleId, entry] of this.#running) {
      if (now - entry.started < SLOW_FILE_MS) continue;
      const test = entry.test
        ? `, in "${entry.test}" for ${Math.round((now - (entry.testStarted ?? now)) / 1000)} s`
        : ", no test started yet";
      process.stdout.write(
        `still running: ${relative(process.cwd(), moduleId)} for ${Math.round((now - entry.started) / 1000)} s${test}\n`,
      );
    }
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    clearInterval(this.#watch);
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
