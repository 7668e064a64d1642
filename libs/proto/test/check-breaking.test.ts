import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

// scripts/check-breaking.sh (the CI step after buf lint) on throwaway git repositories that
// carry the repo's buf.yaml and one small contract, changed commit by commit.
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const script = join(root, "scripts/check-breaking.sh");
const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: "test",
  GIT_AUTHOR_EMAIL: "test@example.invalid",
  GIT_COMMITTER_NAME: "test",
  GIT_COMMITTER_EMAIL: "test@example.invalid",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_NOSYSTEM: "1",
  BUF: join(root, "node_modules/.bin/buf"),
  BREAKING_AGAINST: "",
};

interface Run {
  code: number;
  output: string;
}

function run(cwd: string, file: string, args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { cwd, env: gitEnv, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      done({ code, output: `${stdout}${stderr}` });
    });
  });
}

async function git(cwd: string, ...args: string[]): Promise<void> {
  const result = await run(cwd, "git", args);
  if (result.code !== 0) throw new Error(`git ${args.join(" ")}: ${result.output}`);
}

const contract = (fields: string) => `syntax = "proto3";

package phoenix.demo.v1;

message Note {
${fields}
}
`;

let repo = "";

/** A repository whose first commit holds the repo's buf.yaml and `Note { string text = 1; bytes body = 2; }`. */
async function makeRepo(): Promise<string> {
  repo = await mkdtemp(join(tmpdir(), "check-breaking-"));
  await git(repo, "init", "-q");
  await writeFile(join(repo, "buf.yaml"), await readFile(join(root, "buf.yaml")));
  await mkdir(join(repo, "proto/phoenix/demo/v1"), { recursive: true });
  await commit("base", "  string text = 1;\n  bytes body = 2;");
  return repo;
}

async function commit(message: string, fields: string): Promise<void> {
  await writeFile(join(repo, "proto/phoenix/demo/v1/note.proto"), contract(fields));
  await git(repo, "add", "-A");
  await git(repo, "commit", "-q", "--allow-empty", "-m", message);
}

afterEach(async () => {
  if (repo) await rm(repo, { recursive: true, force: true });
  repo = "";
});

describe("scripts/check-breaking.sh", () => {
  it("passes an additive change against the previous commit", async () => {
    await makeRepo();
    await commit("add a field", "  string text = 1;\n  bytes body = 2;\n  uint64 sent_at = 3;");
    const result = await run(repo, "bash", [script, repo]);
    expect(result.output).toContain("against HEAD~1");
    expect(result.code).toBe(0);
  });

  it("fails on a renumbered field, naming it", async () => {
    await makeRepo();
    await commit("renumber", "  string text = 1;\n  bytes body = 5;");
    const result = await run(repo, "bash", [script, repo]);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/field "2" with name "body" on message "Note" was deleted/);
    expect(result.output).toContain("docs/api-compatibility.md");
  });

  it("fails on an uncommitted breaking edit (the work tree is what is checked)", async () => {
    await makeRepo();
    await commit("add a field", "  string text = 1;\n  bytes body = 2;\n  uint64 sent_at = 3;");
    await writeFile(
      join(repo, "proto/phoenix/demo/v1/note.proto"),
      contract("  string text = 1;\n  string body = 2;\n  uint64 sent_at = 3;"),
    );
    const result = await run(repo, "bash", [script, repo]);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/body.*type/i);
  });

  it("compares against the last v* release tag, not the previous commit", async () => {
    await makeRepo();
    await git(repo, "tag", "v1.0.0");
    await commit("break", "  string text = 1;\n  bytes body = 5;");
    await commit("undo the break", "  string text = 1;\n  bytes body = 2;");
    // Against HEAD~1 the undo is itself a renumbering; against the release nothing changed.
    expect((await run(repo, "bash", [script, "--against", "HEAD~1", repo])).code).not.toBe(0);
    const result = await run(repo, "bash", [script, repo]);
    expect(result.output).toContain("against v1.0.0");
    expect(result.code).toBe(0);

    await commit("break again", "  string text = 1;");
    const broken = await run(repo, "bash", [script, repo]);
    expect(broken.output).toContain("against v1.0.0");
    expect(broken.code).not.toBe(0);
  });

  it("passes a repository with one commit (nothing to compare) and refuses an unknown ref", async () => {
    await makeRepo();
    const result = await run(repo, "bash", [script, repo]);
    expect(result.output).toContain("nothing to compare");
    expect(result.code).toBe(0);
    const unknown = await run(repo, "bash", [script, "--against", "v9.9.9", repo]);
    expect(unknown.code).toBe(2);
    expect(unknown.output).toContain("unknown git ref 'v9.9.9'");
  });
});
