import { status } from "@grpc/grpc-js";
import { decodeRichStatus, STATUS_DETAILS_KEY, statusDetail } from "@phoenix/wire";
import { describe, expect, it } from "vitest";
import {
  AlreadyExistsError,
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
} from "./rpc-errors.js";
import { INTERNAL_ERROR_MESSAGE, toGrpcStatus } from "./to-grpc-status.js";

describe("toGrpcStatus", () => {
  it.each([
    [new InvalidArgumentError("bad field"), status.INVALID_ARGUMENT, "InvalidArgumentError"],
    [new UnauthenticatedError("bad signature"), status.UNAUTHENTICATED, "UnauthenticatedError"],
    [new PermissionDeniedError("not an admin"), status.PERMISSION_DENIED, "PermissionDeniedError"],
    [new NotFoundError("no such group"), status.NOT_FOUND, "NotFoundError"],
    [new AlreadyExistsError("handle taken"), status.ALREADY_EXISTS, "AlreadyExistsError"],
    [new FailedPreconditionError("wrong epoch"), status.FAILED_PRECONDITION, "FailedPreconditionError"],
    [new ResourceExhaustedError("too large"), status.RESOURCE_EXHAUSTED, "ResourceExhaustedError"],
    [new UnavailableError("db down"), status.UNAVAILABLE, "UnavailableError"],
    [new DeadlineExceededError("too slow"), status.DEADLINE_EXCEEDED, "DeadlineExceededError"],
    [new CancelledError("gone"), status.CANCELLED, "CancelledError"],
    [new UnimplementedError("later"), status.UNIMPLEMENTED, "UnimplementedError"],
    [new InternalError("inconsistent state"), status.INTERNAL, "InternalError"],
  ])("keeps code and message of %s", (error, code, name) => {
    const mapped = toGrpcStatus(error);
    expect(mapped).toMatchObject({ code, details: error.message, known: true });
    expect(error.name).toBe(name);
    expect(error).toBeInstanceOf(Error);
    expect(mapped.metadata.get(STATUS_DETAILS_KEY)).toEqual([]);
  });

  it("turns anything else into INTERNAL with a generic message", () => {
    for (const thrown of [
      new Error('relation "groups" does not exist; key=0xdeadbeef'),
      new TypeError("cannot read properties of undefined"),
      "a string",
      { code: status.NOT_FOUND, details: "an object pretending to be a status" },
      undefined,
    ]) {
      const mapped = toGrpcStatus(thrown);
      expect(mapped).toMatchObject({ code: status.INTERNAL, details: INTERNAL_ERROR_MESSAGE, known: false });
      expect(mapped.metadata.toJSON()).toEqual({});
    }
  });

  it("sends structured details in grpc-status-details-bin", () => {
    const detail = statusDetail("phoenix.common.v1.ErrorDetail", new Uint8Array([8, 11, 18, 2, 8, 5]));
    const mapped = toGrpcStatus(
      new FailedPreconditionError("wrong epoch: current is 5", { details: [detail] }),
    );
    const raw = mapped.metadata.get(STATUS_DETAILS_KEY)[0];
    expect(raw).toBeInstanceOf(Buffer);
    expect(decodeRichStatus(raw as Buffer)).toEqual({
      code: status.FAILED_PRECONDITION,
      message: "wrong epoch: current is 5",
      details: [{ typeUrl: "type.googleapis.com/phoenix.common.v1.ErrorDetail", value: detail.value }],
    });
  });

  it("keeps the cause for the log without sending it", () => {
    const cause = new Error("sql: unique violation");
    const error = new AlreadyExistsError("handle taken", { cause });
    expect(error.cause).toBe(cause);
    expect(toGrpcStatus(error).details).toBe("handle taken");
  });
});
