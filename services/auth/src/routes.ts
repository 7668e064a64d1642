// The AS's RPCs bound to their handlers: the one place a new RPC is registered. Every handler is
// `(ctx: AuthContext, request, call?)` in its own file under api/; what a route adds around it
// (federation by the request's domain, the per-caller rate limit) is declared here.
import { auth, type common } from "@phoenix/proto";
import { federatedUnary } from "@phoenix/runtime/federation";
import { bidiStreaming, defineService, type ServiceRegistration, unary } from "@phoenix/runtime/grpc";
import { addClient } from "./api/add-client.js";
import { addClientWithGrant } from "./api/add-client-with-grant.js";
import { checkHandleExists } from "./api/check-handle-exists.js";
import { createHandle } from "./api/create-handle.js";
import { deleteClient } from "./api/delete-client.js";
import { deleteHandle } from "./api/delete-handle.js";
import { deletePassword } from "./api/delete-password.js";
import { deleteUser } from "./api/delete-user.js";
import { dequeueConnectionOffers } from "./api/dequeue-connection-offers.js";
import { dequeueHandleConnectionOffers } from "./api/dequeue-handle-connection-offers.js";
import { enqueueConnectionOffer } from "./api/enqueue-connection-offer.js";
import { enqueueHandleConnectionOffer } from "./api/enqueue-handle-connection-offer.js";
import { finishPasswordLogin } from "./api/finish-password-login.js";
import { finishPasswordRegistration } from "./api/finish-password-registration.js";
import { getAsCredentials } from "./api/get-as-credentials.js";
import { getConnectionPackages } from "./api/get-connection-packages.js";
import { getHandleConnectionPackage } from "./api/get-handle-connection-package.js";
import { getUserProfile } from "./api/get-user-profile.js";
import { listClients } from "./api/list-clients.js";
import { listenConnectionOffers } from "./api/listen-connection-offers.js";
import { listenHandleConnectionOffers } from "./api/listen-handle-connection-offers.js";
import { mergeUserProfile } from "./api/merge-user-profile.js";
import { publishConnectionPackages } from "./api/publish-connection-packages.js";
import { publishHandleConnectionPackages } from "./api/publish-handle-connection-packages.js";
import { callerLimit } from "./api/rate-limit.js";
import { refreshHandle } from "./api/refresh-handle.js";
import { registerUser } from "./api/register-user.js";
import { renewClientCredential } from "./api/renew-client-credential.js";
import { stageUserProfile } from "./api/stage-user-profile.js";
import { startPasswordLogin } from "./api/start-password-login.js";
import { startPasswordRegistration } from "./api/start-password-registration.js";
import type { AuthContext } from "./context.js";
import { parseClientId, parseUserId, requestDomain } from "./domain/ids.js";

const S = auth.AuthServiceService;

/** The domain a request carries in its `domain` field (handle RPCs, GetAsCredentials). */
function domainField(request: { domain: string }): string {
  return requestDomain(request.domain, "domain");
}

/** The domain of the user a request names in `user_id`. */
function userIdDomain(request: { userId: common.UserId | undefined }): string {
  return parseUserId(request.userId, "user_id").domain;
}

/**
 * The AuthService's handlers. The public lookups and offers are federated: a request about
 * another domain goes through `ctx.router` (after this AS charged the caller's limit).
 */
export function authRoutes(ctx: AuthContext): ServiceRegistration {
  return defineService(S, {
    getAsCredentials: federatedUnary(
      S.getAsCredentials,
      ctx.router,
      domainField,
      () => getAsCredentials(ctx),
      {
        // Another domain's credentials are cached in the AS database, not forwarded each time.
        remote: (domain, _request, call) => ctx.remoteCredentials.get(domain, call),
      },
    ),
    registerUser: unary((request, call) => registerUser(ctx, request, call)),
    deleteUser: unary((request) => deleteUser(ctx, request)),
    addClient: unary((request) => addClient(ctx, request)),
    renewClientCredential: unary((request) => renewClientCredential(ctx, request)),
    listClients: unary((request) => listClients(ctx, request)),
    deleteClient: unary((request) => deleteClient(ctx, request)),
    // Account password (OPAQUE): never federated, a user logs in at its own homeserver.
    startPasswordRegistration: unary((request) => startPasswordRegistration(ctx, request)),
    finishPasswordRegistration: unary((request) => finishPasswordRegistration(ctx, request)),
    deletePassword: unary((request) => deletePassword(ctx, request)),
    startPasswordLogin: unary((request, call) => startPasswordLogin(ctx, request, call)),
    finishPasswordLogin: unary((request) => finishPasswordLogin(ctx, request)),
    addClientWithGrant: unary((request) => addClientWithGrant(ctx, request)),
    stageUserProfile: unary((request) => stageUserProfile(ctx, request)),
    mergeUserProfile: unary((request) => mergeUserProfile(ctx, request)),
    getUserProfile: federatedUnary(
      S.getUserProfile,
      ctx.router,
      userIdDomain,
      (request) => getUserProfile(ctx, request),
      { admit: callerLimit(ctx, ctx.limits.profileFetch) },
    ),
    checkHandleExists: federatedUnary(
      S.checkHandleExists,
      ctx.router,
      domainField,
      (request) => checkHandleExists(ctx, request),
      { admit: callerLimit(ctx, ctx.limits.checkHandle) },
    ),
    createHandle: unary((request, call) => createHandle(ctx, request, call)),
    refreshHandle: unary((request) => refreshHandle(ctx, request)),
    deleteHandle: unary((request) => deleteHandle(ctx, request)),
    publishConnectionPackages: unary((request) => publishConnectionPackages(ctx, request)),
    getConnectionPackages: federatedUnary(
      S.getConnectionPackages,
      ctx.router,
      userIdDomain,
      (request) => getConnectionPackages(ctx, request),
      { admit: callerLimit(ctx, ctx.limits.packageFetch) },
    ),
    publishHandleConnectionPackages: unary((request) => publishHandleConnectionPackages(ctx, request)),
    getHandleConnectionPackage: federatedUnary(
      S.getHandleConnectionPackage,
      ctx.router,
      domainField,
      (request) => getHandleConnectionPackage(ctx, request),
      { admit: callerLimit(ctx, ctx.limits.packageFetch) },
    ),
    enqueueConnectionOffer: federatedUnary(
      S.enqueueConnectionOffer,
      ctx.router,
      (request) => parseClientId(request.clientId, "client_id").userId.domain,
      (request) => enqueueConnectionOffer(ctx, request),
      { admit: callerLimit(ctx, ctx.limits.enqueuePerCaller) },
    ),
    enqueueHandleConnectionOffer: federatedUnary(
      S.enqueueHandleConnectionOffer,
      ctx.router,
      domainField,
      (request) => enqueueHandleConnectionOffer(ctx, request),
      { admit: callerLimit(ctx, ctx.limits.enqueuePerCaller) },
    ),
    dequeueConnectionOffers: unary((request) => dequeueConnectionOffers(ctx, request)),
    listenConnectionOffers: bidiStreaming((requests, call, stream) =>
      listenConnectionOffers(ctx, requests, call, stream),
    ),
    dequeueHandleConnectionOffers: unary((request) => dequeueHandleConnectionOffers(ctx, request)),
    listenHandleConnectionOffers: bidiStreaming((requests, call, stream) =>
      listenHandleConnectionOffers(ctx, requests, call, stream),
    ),
  });
}
