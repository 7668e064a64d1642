// Numbers and service descriptors every flow shares: gRPC status codes the client reacts to,
// how many one-time packages it publishes, and the services whose method paths it signs.
import { auth, delivery, queue } from "@phoenix/proto";

export const DAY = 86_400_000;

/** gRPC status codes the flows tell apart. */
export const NOT_FOUND = 5;
export const PERMISSION_DENIED = 7;
export const FAILED_PRECONDITION = 9;
export const UNAUTHENTICATED = 16;
/** Codes of a call whose outcome is unknown: the server may or may not have applied it. */
export const UNKNOWN = 2;
export const DEADLINE_EXCEEDED = 4;
export const INTERNAL = 13;
export const UNAVAILABLE = 14;

/** One-time connection packages / AddPackages published per round; one more is the last resort. */
export const CONNECTION_PACKAGES = 4;
export const ADD_PACKAGES = 4;

export const AS = auth.AuthServiceService;
export const DS = delivery.DeliveryServiceService;
export const QS = queue.QueueServiceService;
