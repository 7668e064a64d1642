import {
  type Metadata,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  status,
} from "@grpc/grpc-js";
import { REQUEST_ID_KEY, splitPath, statusName } from "@phoenix/wire";
import type { Logger } from "../log/create-logger.js";
import type { RpcMetrics } from "../metrics/create-metrics.js";
import { abandonReason, deadlineMillis } from "./deadline.js";
import { requestIdOf } from "./request-id.js";

export interface ObserveCallsOptions {
  logger: Logger;
  metrics?: RpcMetrics | undefined;
  /** Services whose successful calls are logged at trace instead of debug (health probes). */
  quietServices?: ReadonlySet<string>;
}

/** Codes that point at the server rather than the request. */
const SERVER_FAULTS = new Set<number>([
  status.UNKNOWN,
  status.INTERNAL,
  status.DATA_LOSS,
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.UNIMPLEMENTED,
]);

/**
 * The server interceptor that sees every call, including those grpc-js ends itself before any
 * handler runs (oversized or undecodable message, client deadline): it assigns the request id,
 * records the RPC metrics and writes one access-log line per call. It must be the first
 * interceptor so that it wraps grpc-js' own call object (see {@link transportStatusCode}).
 */
export function observeCalls(options: ObserveCallsOptions): ServerInterceptor {
  const { logger, metrics } = options;
  return (descriptor, call) => {
    const path = descriptor.path;
    const { service, method } = splitPath(path);
    const startedAt = process.hrtime.bigint();
    const receivedAt = Date.now();
    const finishMetrics = metrics?.start(service, method);
    let requestId: string | undefined;
    let finished = false;

    const finish = (code: number, details: string | undefined) => {
      if (finished) return;
      finished = true;
      const codeName = statusName(code);
      finishMetrics?.(codeName);
      const durationMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
      const line = {
        rpc: path,
        [REQUEST_ID_KEY]: requestId,
        peer: call.getPeer(),
        code: codeName,
        durationMs: Math.round(durationMs * 1000) / 1000,
        ...(code === status.OK || details === undefined ? {} : { details }),
      };
      if (code === status.OK) {
        if (options.quietServices?.has(service)) logger.trace(line, "rpc finished");
        else logger.debug(line, "rpc finished");
      } else if (SERVER_FAULTS.has(code)) {
        logger.warn(line, "rpc failed");
      } else {
        logger.info(line, "rpc refused");
      }
    };

    return new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata: Metadata, nextMetadata) {
            requestId = requestIdOf(metadata);
            nextMetadata(metadata);
          },
          onCancel() {
            // Reached after every call; only a call without a status seen above ended in the
            // transport: cancelled by the client, or refused by grpc-js itself.
            if (finished) return;
            const code =
              transportStatusCode(call) ?? abandonReason(deadlineMillis(call.getDeadline()), receivedAt).code;
            finish(code, undefined);
          },
        });
      },
      sendStatus(st, next) {
        finish(st.code, st.details);
        next(st);
      },
    });
  };
}

interface SentHeaders {
  sentHeaders?: Record<string, unknown>;
  sentTrailers?: Record<string, unknown>;
}

/**
 * The status grpc-js sent on its own (RESOURCE_EXHAUSTED for an oversized message, INTERNAL for
 * an undecodable one, DEADLINE_EXCEEDED) never passes through interceptors; read it from the
 * HTTP/2 stream of grpc-js' base call. Relies on a private field: when absent (another grpc-js
 * version), the call is counted as CANCELLED / DEADLINE_EXCEEDED instead.
 */
function transportStatusCode(call: ServerInterceptingCallInterface): number | undefined {
  const stream = (call as unknown as { stream?: SentHeaders }).stream;
  const raw = stream?.sentTrailers?.["grpc-status"] ?? stream?.sentHeaders?.["grpc-status"];
  const code = Number(raw);
  return raw === undefined || !Number.isInteger(code) ? undefined : code;
}
