import { delivery } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { AlreadyExistsError, FailedPreconditionError } from "@phoenix/runtime/errors";
import { sizeLimit } from "../domain/errors.js";
import { checkQueueRef, DsGroup, mlsGroupId } from "../domain/group.js";
import { LIMITS } from "../domain/limits.js";
import { activityMonth, groupExists, insertGroup, takeReservation } from "../store/group-store.js";
import type { DeliveryContext } from "./context.js";
import { openGroupRequest, sealState, verifySigner } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.createGroup;

/** CreateGroup: validate the creator's tree and GroupInfo, consume the reservation, store the state. */
export async function createGroup(
  ctx: DeliveryContext,
  request: delivery.CreateGroupRequest,
): Promise<delivery.CreateGroupResponse> {
  const opened = openGroupRequest(ctx, request, delivery.CreateGroupTbs, METHOD);
  const { tbs, uuid, earKey } = opened;
  if (tbs.ratchetTree.length > LIMITS.ratchetTree)
    throw sizeLimit("tbs.ratchet_tree", LIMITS.ratchetTree, tbs.ratchetTree.length);
  if (tbs.groupInfo.length > LIMITS.createGroupInfo)
    throw sizeLimit("tbs.group_info", LIMITS.createGroupInfo, tbs.groupInfo.length);
  if (tbs.creatorClientInfo.length > LIMITS.clientInfo)
    throw sizeLimit("tbs.creator_client_info", LIMITS.clientInfo, tbs.creatorClientInfo.length);
  if (tbs.encryptedUserProfileKey.length > LIMITS.profileKey)
    throw sizeLimit("tbs.encrypted_user_profile_key", LIMITS.profileKey, tbs.encryptedUserProfileKey.length);
  const creatorQueue = checkQueueRef(tbs.creatorQueue, "tbs.creator_queue");
  if (opened.header.sender?.$case !== "leafIndex" || opened.header.sender.value !== 0)
    await verifySigner(ctx, opened, undefined, "the header sender (must be leaf 0)");
  const { group, queueReportKey } = await DsGroup.create(
    {
      mlsGroupId: mlsGroupId({ uuid, domain: ctx.domain }),
      ratchetTree: tbs.ratchetTree,
      groupInfo: tbs.groupInfo,
      creatorClientInfo: tbs.creatorClientInfo,
      creatorQueue,
      encryptedUserProfileKey: tbs.encryptedUserProfileKey,
    },
    ctx,
  );
  const claim = await verifySigner(ctx, opened, group.signatureKeyOf(0), "leaf 0");
  const sealed = sealState(ctx, uuid, group, earKey);
  await transaction(ctx.db, async (tx) => {
    if (await groupExists(tx, uuid)) throw new AlreadyExistsError("the group exists");
    if (!(await takeReservation(tx, uuid, new Date(ctx.now()))))
      throw new FailedPreconditionError("the group id is not reserved or its reservation expired");
    await claim(tx);
    await insertGroup(tx, {
      groupId: uuid,
      state: sealed.state,
      stateTag: sealed.stateTag,
      lastActiveMonth: activityMonth(ctx.now()),
      queueReportKey,
      queueReports: new Uint8Array(0),
    });
  });
  ctx.stateCache.set(uuid, sealed.stateTag, ctx.stateCache.keyTag(earKey), group, sealed.plainBytes);
  return {};
}
