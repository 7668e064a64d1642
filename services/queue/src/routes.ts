// The QS's RPCs bound to their handlers: the one place a new RPC is registered. Every handler is
// `(ctx: QueueContext, request, call?)` in its own file under api/.
import { queue } from "@phoenix/proto";
import { type FederationRouter, federatedUnary } from "@phoenix/runtime/federation";
import { bidiStreaming, defineService, type ServiceRegistration, unary } from "@phoenix/runtime/grpc";
import { blockGroup } from "./api/block-group.js";
import type { QueueContext } from "./api/context.js";
import { createClient } from "./api/create-client.js";
import { createUser } from "./api/create-user.js";
import { deleteClient } from "./api/delete-client.js";
import { deleteUser } from "./api/delete-user.js";
import { dequeue } from "./api/dequeue.js";
import { fetchAddPackages, fetchAddPackagesDomain, limitFetchAddPackages } from "./api/fetch-add-packages.js";
import { getQueueConfigEncryptionKey } from "./api/get-queue-config-encryption-key.js";
import { getUser } from "./api/get-user.js";
import { getVerifyingKey } from "./api/get-verifying-key.js";
import { listen } from "./api/listen.js";
import { publishAddPackages } from "./api/publish-add-packages.js";
import { setPushToken } from "./api/set-push-token.js";
import { unblockGroup } from "./api/unblock-group.js";
import { updateClient } from "./api/update-client.js";
import { updateUser } from "./api/update-user.js";

/** The QueueService's handlers; FetchAddPackages for another domain goes through `router`. */
export function queueRoutes(ctx: QueueContext, router: FederationRouter): ServiceRegistration {
  return defineService(queue.QueueServiceService, {
    getQueueConfigEncryptionKey: unary((req) => getQueueConfigEncryptionKey(ctx, req)),
    getVerifyingKey: unary((req) => getVerifyingKey(ctx, req)),
    createUser: unary((req, call) => createUser(ctx, req, call)),
    updateUser: unary((req) => updateUser(ctx, req)),
    getUser: unary((req) => getUser(ctx, req)),
    deleteUser: unary((req) => deleteUser(ctx, req)),
    createClient: unary((req) => createClient(ctx, req)),
    updateClient: unary((req) => updateClient(ctx, req)),
    deleteClient: unary((req) => deleteClient(ctx, req)),
    setPushToken: unary((req) => setPushToken(ctx, req)),
    publishAddPackages: unary((req) => publishAddPackages(ctx, req)),
    // The user holding the friendship token lives on `domain`: its QS keeps the AddPackages.
    fetchAddPackages: federatedUnary(
      queue.QueueServiceService.fetchAddPackages,
      router,
      fetchAddPackagesDomain,
      (req) => fetchAddPackages(ctx, req),
      { admit: (_req, call) => limitFetchAddPackages(ctx, call) },
    ),
    dequeue: unary((req) => dequeue(ctx, req)),
    listen: bidiStreaming((requests, call, stream) => listen(ctx, requests, call, stream)),
    blockGroup: unary((req) => blockGroup(ctx, req)),
    unblockGroup: unary((req) => unblockGroup(ctx, req)),
  });
}
