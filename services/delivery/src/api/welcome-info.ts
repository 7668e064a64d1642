import { common, delivery } from "@phoenix/proto";
import { NotFoundError } from "@phoenix/runtime/errors";
import { unauthenticated } from "../domain/errors.js";
import type { DeliveryContext } from "./context.js";
import { openGroupRequest, readGroupState, verifySigner } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.welcomeInfo;

/** WelcomeInfo: the tree of the joiner's epoch, authenticated by the added KeyPackage's key. */
export async function welcomeInfo(
  ctx: DeliveryContext,
  request: delivery.WelcomeInfoRequest,
): Promise<delivery.WelcomeInfoResponse> {
  const opened = openGroupRequest(ctx, request, delivery.WelcomeInfoTbs, METHOD);
  const { tbs, header } = opened;
  if (header.sender?.$case !== "keyPackageRef")
    throw unauthenticated(
      common.ErrorReason.ERROR_REASON_UNKNOWN_SENDER,
      "header sender must be a key_package_ref",
    );
  const group = await readGroupState(ctx, opened.uuid, opened.earKey);
  const joiner = group.welcomeJoiner(tbs.epoch, header.sender.value);
  // A released tree is NOT_FOUND before the signature check: the DS no longer knows that
  // epoch's joiners, and the request already proved knowledge of the EAR key.
  if (joiner === "released") throw notKept(tbs.epoch);
  const claim = await verifySigner(
    ctx,
    opened,
    joiner.signatureKey,
    "the KeyPackage (not added in that epoch)",
  );
  await claim(ctx.db);
  if (joiner.expired) throw notKept(tbs.epoch);
  const info = group.welcomeInfo(tbs.epoch);
  if (info === undefined) throw notKept(tbs.epoch);
  return info;
}

function notKept(epoch: bigint): NotFoundError {
  return new NotFoundError(`the tree of epoch ${epoch} is no longer kept`);
}
