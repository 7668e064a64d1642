import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./create-logger.js";

function collect() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { lines, stream };
}

describe("createLogger", () => {
  it("writes JSON lines with the service name and a level name", () => {
    const { lines, stream } = collect();
    const log = createLogger({ service: "echo", destination: stream });
    log.info({ answer: 42 }, "hello");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "info", service: "echo", msg: "hello", answer: 42 });
    expect(typeof lines[0]?.time).toBe("string");
  });

  it("respects the level", () => {
    const { lines, stream } = collect();
    const log = createLogger({ service: "echo", level: "warn", destination: stream });
    log.info("hidden");
    log.warn("shown");
    expect(lines.map((l) => l.msg)).toEqual(["shown"]);
  });

  it("redacts key material and credentials at any of the first three levels", () => {
    const { lines, stream } = collect();
    const log = createLogger({ service: "echo", destination: stream, redact: ["handlePrivate"] });
    log.info(
      {
        earKey: "EAR-SECRET",
        client: { privateKey: "PRIV-SECRET", id: "c1" },
        req: { headers: { authorization: "Bearer TOKEN-SECRET" } },
        handlePrivate: "HANDLE-SECRET",
      },
      "request",
    );
    const text = JSON.stringify(lines[0]);
    for (const secret of ["EAR-SECRET", "PRIV-SECRET", "TOKEN-SECRET", "HANDLE-SECRET"]) {
      expect(text).not.toContain(secret);
    }
    expect(lines[0]).toMatchObject({ earKey: "[redacted]", client: { privateKey: "[redacted]", id: "c1" } });
  });

  it("logs binary values as their length and child loggers keep bindings", () => {
    const { lines, stream } = collect();
    const log = createLogger({ service: "echo", destination: stream }).child({ rpc: "/x.Y/Z" });
    log.info({ payload: new Uint8Array([1, 2, 3]), nested: { blob: Buffer.alloc(10) } }, "call");
    expect(lines[0]).toMatchObject({ rpc: "/x.Y/Z", payload: "<3 bytes>", nested: { blob: "<10 bytes>" } });
  });

  it("serializes errors with type, message and stack", () => {
    const { lines, stream } = collect();
    const log = createLogger({ service: "echo", destination: stream });
    log.error({ err: new TypeError("boom") }, "failed");
    expect(lines[0]?.err).toMatchObject({ type: "TypeError", message: "boom" });
    const err = lines[0]?.err as { stack?: string } | undefined;
    expect(err?.stack).toContain("TypeError: boom");
  });
});
