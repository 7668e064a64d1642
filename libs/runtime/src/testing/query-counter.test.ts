import { describe, expect, it } from "vitest";
import { classifyStatement } from "./query-counter.js";

describe("classifyStatement", () => {
  it("counts a locking select as a read and an upsert or returning update as one write", () => {
    expect(classifyStatement('select "x" from "t" where "id" = $1 for update')).toBe("read");
    expect(classifyStatement('insert into "t" ("a") values ($1) on conflict do nothing returning "a"')).toBe(
      "write",
    );
    expect(classifyStatement('update "t" set "a" = $1 returning "a"')).toBe("write");
    expect(classifyStatement('delete from "t" where "a" = $1')).toBe("write");
    expect(classifyStatement('with moved as (delete from "t" returning *) select * from moved')).toBe(
      "write",
    );
    expect(classifyStatement("with x as (select 1) select * from x")).toBe("read");
  });

  it("leaves out transaction control, the embedded bus and the outbox relay", () => {
    for (const control of ["begin", "commit", "rollback", "savepoint s1", "release savepoint s1"]) {
      expect(classifyStatement(control)).toBe("control");
    }
    expect(classifyStatement('select * from "phoenix_bus"."messages"')).toBe("infra");
    expect(classifyStatement('delete from "phoenix_runtime"."outbox" where "id" = $1')).toBe("infra");
    expect(classifyStatement('insert into "phoenix_runtime"."outbox" ("id") values ($1)')).toBe("write");
  });
});
