// What every `phoenix-admin` command is made of: its usage, options and run, given a call that
// signs operator requests and holds a client of each admin service on the listener it targets.
import type {
  AuthAdminServiceClient,
  common,
  FederationAdminServiceClient,
  MessageEncoder,
  QueueAdminServiceClient,
} from "@phoenix/proto";

/** Where the CLI writes (swappable in tests). */
export interface AdminCliIo {
  out(line: string): void;
  err(line: string): void;
}

/** A wrong command line: printed with the usage, exit code 2. */
export class AdminUsageError extends Error {
  override readonly name = "AdminUsageError";
}

export type Values = Record<string, string | boolean | undefined>;

/** The admin service a command calls: it decides which listener the CLI dials. */
export type AdminService = "auth" | "federation" | "queue";

export interface Call {
  /** The AS's admin API. */
  client: AuthAdminServiceClient;
  /** The federation gateway's. */
  federation: FederationAdminServiceClient;
  /** The QS's. */
  queue: QueueAdminServiceClient;
  /** Signs a `…Tbs` for `method` with the operator key. */
  sign<T extends { header: common.RequestHeader | undefined; operator: string }>(
    type: MessageEncoder<T>,
    method: { path: string },
    fields: Omit<T, "header" | "operator">,
  ): Promise<{ signed: { tbs: Uint8Array; signature: Uint8Array } }>;
  args: string[];
  values: Values;
  /** Prints a result: JSON with --json, else `lines`. */
  print(json: unknown, lines: readonly string[]): void;
}

export interface Command {
  /** The service it calls (default auth). */
  service?: AdminService;
  usage: string;
  summary: string;
  options?: Record<string, { type: "string" | "boolean"; description: string }>;
  /** Runs without a server (keys generate). */
  local?: (args: string[], values: Values, io: AdminCliIo) => Promise<void>;
  run?: (call: Call) => Promise<void>;
}

/** A required positional argument. */
export function need(args: string[], index: number, what: string): string {
  const value = args[index];
  if (value === undefined || value === "") throw new AdminUsageError(`missing ${what}`);
  return value;
}
