// The self-checking scripts in examples/mls-scenarios run as a user of the package would run them:
// a separate node process importing @phoenix/mls by name (here resolved through the workspace to
// the sources), exiting 0 with an "ok" line.
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const run = promisify(execFile);

async function scenario(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ["--conditions=source", "--import", "tsx", join("examples", "mls-scenarios", file)],
      { cwd: root, timeout: 60_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, stdout: err.stdout ?? "", stderr: err.stderr ?? String(e) };
  }
}

describe("examples/mls-scenarios", () => {
  it("nested-unmerged-leaves.mjs: a newcomer joins a tree with nested unmerged leaves", async () => {
    const res = await scenario("nested-unmerged-leaves.mjs");
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^nested-unmerged-leaves: ok \(z joined a tree with [1-9]\d* nested/);
  });

  it("removed-leaf-reused.mjs: the member whose leaf a joiner takes sees its removal", async () => {
    const res = await scenario("removed-leaf-reused.mjs");
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^removed-leaf-reused: ok \(b removed, d on leaf \d+\)/);
  });
});
