// The DS's RPCs bound to their handlers: the one place a new RPC is registered. Every handler is
// `(ctx: DeliveryContext, request, call?)` in its own file under api/.
import { delivery } from "@phoenix/proto";
import { type FederationRouter, federatedUnary } from "@phoenix/runtime/federation";
import { defineService, type ServiceRegistration, unary } from "@phoenix/runtime/grpc";
import { connectionGroupInfo } from "./api/connection-group-info.js";
import type { DeliveryContext } from "./api/context.js";
import { createGroup } from "./api/create-group.js";
import { deleteGroup } from "./api/delete-group.js";
import { signedGroupDomain } from "./api/destination.js";
import { externalCommitInfo } from "./api/external-commit-info.js";
import { groupOperation } from "./api/group-operation.js";
import { joinConnectionGroup } from "./api/join-connection-group.js";
import { requestGroupId } from "./api/request-group-id.js";
import { resync } from "./api/resync.js";
import { selfRemove } from "./api/self-remove.js";
import { sendMessage } from "./api/send-message.js";
import { updateProfileKey } from "./api/update-profile-key.js";
import { updateQueueInfo } from "./api/update-queue-info.js";
import { welcomeInfo } from "./api/welcome-info.js";

const Service = delivery.DeliveryServiceService;

/**
 * The DeliveryService's handlers. A request about a group of another domain goes to that group's
 * DS through `router` (the federation gateway), the client's signature untouched; the group id
 * is inside the signed tbs.
 */
export function deliveryRoutes(ctx: DeliveryContext, router: FederationRouter): ServiceRegistration {
  return defineService(Service, {
    requestGroupId: unary((req, call) => requestGroupId(ctx, req, call)),
    createGroup: unary((req) => createGroup(ctx, req)),
    groupOperation: federatedUnary(
      Service.groupOperation,
      router,
      signedGroupDomain(delivery.GroupOperationTbs),
      (req) => groupOperation(ctx, req),
    ),
    joinConnectionGroup: federatedUnary(
      Service.joinConnectionGroup,
      router,
      signedGroupDomain(delivery.JoinConnectionGroupTbs),
      (req) => joinConnectionGroup(ctx, req),
    ),
    resync: federatedUnary(Service.resync, router, signedGroupDomain(delivery.ResyncTbs), (req) =>
      resync(ctx, req),
    ),
    selfRemove: federatedUnary(Service.selfRemove, router, signedGroupDomain(delivery.SelfRemoveTbs), (req) =>
      selfRemove(ctx, req),
    ),
    sendMessage: federatedUnary(
      Service.sendMessage,
      router,
      signedGroupDomain(delivery.SendMessageTbs),
      (req) => sendMessage(ctx, req),
    ),
    deleteGroup: federatedUnary(
      Service.deleteGroup,
      router,
      signedGroupDomain(delivery.DeleteGroupTbs),
      (req) => deleteGroup(ctx, req),
    ),
    welcomeInfo: federatedUnary(
      Service.welcomeInfo,
      router,
      signedGroupDomain(delivery.WelcomeInfoTbs),
      (req) => welcomeInfo(ctx, req),
    ),
    externalCommitInfo: federatedUnary(
      Service.externalCommitInfo,
      router,
      signedGroupDomain(delivery.ExternalCommitInfoTbs),
      (req) => externalCommitInfo(ctx, req),
    ),
    // ConnectionGroupInfo is unsigned: its group id is the request's own.
    connectionGroupInfo: federatedUnary(
      Service.connectionGroupInfo,
      router,
      (req) => req.groupId?.domain ?? "",
      (req) => connectionGroupInfo(ctx, req),
    ),
    updateQueueInfo: federatedUnary(
      Service.updateQueueInfo,
      router,
      signedGroupDomain(delivery.UpdateQueueInfoTbs),
      (req) => updateQueueInfo(ctx, req),
    ),
    updateProfileKey: federatedUnary(
      Service.updateProfileKey,
      router,
      signedGroupDomain(delivery.UpdateProfileKeyTbs),
      (req) => updateProfileKey(ctx, req),
    ),
  });
}
