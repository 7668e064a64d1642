// Sending raw inputs: bytes as a gRPC request body (unary or the first frame of a bidi stream),
// and HTTP requests to the edge gateway; each outcome is judged against the contract.
import { Client, credentials, Metadata, status } from "@grpc/grpc-js";
import { googleRpc } from "@phoenix/proto";

/** What one input got back. */
export interface Outcome {
  /** gRPC code, or HTTP status for REST inputs. */
  code: number;
  message: string;
  /** Why the answer breaks the contract (a finding), undefined when it is a proper answer. */
  problem?: string;
}

const identity = (b: Buffer) => b;

/** One raw gRPC client per address (large messages allowed: the server must refuse them). */
export class RawGrpc {
  private readonly clients = new Map<string, Client>();

  private client(address: string): Client {
    let c = this.clients.get(address);
    if (!c) {
      c = new Client(address, credentials.createInsecure(), {
        "grpc.max_send_message_length": -1,
        "grpc.max_receive_message_length": -1,
      });
      this.clients.set(address, c);
    }
    return c;
  }

  /** Sends `bytes` as the request of unary `path`; resolves with the status. */
  unary(address: string, path: string, bytes: Uint8Array, deadlineMs: number): Promise<Outcome> {
    return new Promise((resolve) => {
      this.client(address).makeUnaryRequest(
        path,
        identity,
        identity,
        Buffer.from(bytes),
        new Metadata(),
        { deadline: Date.now() + deadlineMs },
        (error) => {
          if (!error) resolve({ code: status.OK, message: "" });
          else resolve({ code: error.code, message: error.details ?? "" });
        },
      );
    });
  }

  /**
   * Opens bidi stream `path`, writes `bytes` as the first frame and waits for the status. A
   * stream still open (a valid listen) when `openMs` passes is cancelled and reported as OK.
   */
  stream(address: string, path: string, bytes: Uint8Array, openMs: number): Promise<Outcome> {
    return new Promise((resolve) => {
      let settled = false;
      const call = this.client(address).makeBidiStreamRequest(path, identity, identity, new Metadata(), {});
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        call.cancel();
        resolve({ code: status.OK, message: "stream open" });
      }, openMs);
      call.on("data", () => undefined);
      call.on("error", () => undefined);
      call.on("status", (s: { code: number; details: string }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ code: s.code, message: s.details });
      });
      call.write(Buffer.from(bytes));
    });
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/** gRPC codes a service may answer a bad input with (the architecture's "clear status"). */
const PROPER_CODES = new Set<number>([
  status.OK,
  status.CANCELLED,
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  status.PERMISSION_DENIED,
  status.RESOURCE_EXHAUSTED,
  status.FAILED_PRECONDITION,
  status.ABORTED,
  status.OUT_OF_RANGE,
  status.UNAUTHENTICATED,
]);

/**
 * Judges a gRPC answer: INTERNAL/UNKNOWN (an escaped bug), UNAVAILABLE/DEADLINE_EXCEEDED (a hung
 * or dead service) and any refusal without a message are findings. `upstreamMayFail`: the RPC
 * forwards to another server, which may legitimately be unreachable (UNAVAILABLE).
 */
export function judgeGrpc(outcome: Outcome, upstreamMayFail: boolean): Outcome {
  const { code, message } = outcome;
  if (upstreamMayFail && (code === status.UNAVAILABLE || code === status.UNIMPLEMENTED) && message)
    return outcome;
  if (!PROPER_CODES.has(code)) return { ...outcome, problem: `status ${status[code] ?? code}` };
  if (code !== status.OK && code !== status.CANCELLED && message.trim() === "")
    return { ...outcome, problem: `status ${status[code]} without a message` };
  return outcome;
}

const PROPER_HTTP = new Set([200, 400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 429, 431]);

/** Sends one HTTP request to the edge gateway and judges the answer. */
export async function sendRest(
  url: string,
  init: { method: string; headers: Record<string, string>; body?: Uint8Array | string },
  deadlineMs: number,
): Promise<Outcome> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(deadlineMs) });
  } catch (error) {
    return { code: 0, message: String(error), problem: `no HTTP answer: ${String(error)}` };
  }
  const bytes = new Uint8Array(await response.arrayBuffer().catch(() => new ArrayBuffer(0)));
  const outcome: Outcome = { code: response.status, message: "" };
  if (response.ok) return outcome;
  if (!PROPER_HTTP.has(response.status)) outcome.problem = `HTTP ${response.status}`;
  const type = response.headers.get("content-type") ?? "";
  try {
    let code: number;
    let message: string;
    if (type.includes("protobuf")) {
      const s = googleRpc.Status.decode(bytes);
      code = s.code;
      message = s.message;
    } else if (type.includes("json")) {
      const json = JSON.parse(new TextDecoder().decode(bytes)) as { code?: unknown; message?: unknown };
      if (typeof json.code !== "number" || typeof json.message !== "string") throw new Error("not a Status");
      code = json.code;
      message = json.message;
    } else throw new Error(`content type "${type}"`);
    outcome.message = message;
    if (code === 0 || message.trim() === "")
      outcome.problem ??= `error body without code or message (${code})`;
    if (code === status.INTERNAL || code === status.UNKNOWN)
      outcome.problem ??= `status ${status[code]}: ${message}`;
  } catch (error) {
    outcome.problem ??= `HTTP ${response.status} without a google.rpc.Status body: ${String(error)}`;
  }
  return outcome;
}

/** WebSocket close codes that are no proper answer: internal error, and gRPC INTERNAL/UNKNOWN/UNAVAILABLE. */
const IMPROPER_CLOSE = new Set([
  1006,
  1011,
  4000 + status.UNKNOWN,
  4000 + status.INTERNAL,
  4000 + status.UNAVAILABLE,
]);

/**
 * Opens the edge gateway's WebSocket `url`, sends `frame` (binary or text) and waits for the
 * close. A socket still open after `openMs` (a valid listen) is closed and reported as OK (1000).
 * The outcome's code is the close code, or the HTTP status when the upgrade was refused.
 */
export async function sendWebSocket(
  url: string,
  frame: Uint8Array | string,
  openMs: number,
): Promise<Outcome> {
  const { default: WebSocket } = await import("ws");
  return new Promise((resolve) => {
    let settled = false;
    const socket = new WebSocket(url);
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.terminate();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ code: 1000, message: "stream open" }), openMs);
    socket.on("open", () => socket.send(frame, { binary: typeof frame !== "string" }));
    socket.on("error", () => undefined);
    socket.on("unexpected-response", (_req, res) => {
      const code = res.statusCode ?? 0;
      finish({
        code,
        message: `upgrade refused: HTTP ${code}`,
        ...(PROPER_HTTP.has(code) ? {} : { problem: `upgrade answered HTTP ${code}` }),
      });
    });
    socket.on("close", (code: number, reason: Buffer) => {
      const message = reason.toString("utf8");
      const problem = IMPROPER_CLOSE.has(code)
        ? `closed with ${code}`
        : code >= 4000 && message.trim() === ""
          ? `closed with ${code} without a reason`
          : undefined;
      finish({ code, message, ...(problem ? { problem } : {}) });
    });
  });
}
