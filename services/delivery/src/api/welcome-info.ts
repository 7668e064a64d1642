import { common, delivery, rpcLabel } from "@phoenix/proto";
import { NotFoundError } from "@phoenix/runtime/errors";
import { unauthenticated } from "../domain/errors.js";
import {
  checkEarKey,
  type DsDeps,
  localGroupId,
  openSigned,
  readGroupState,
  verifyRequest,
} from "./pipeline.js";

const LABEL = rpcLabel(delivery.DeliveryServiceService.welcomeInfo);

/** WelcomeInfo: the tree of the joiner's epoch, authenticated by the added KeyPackage's key. */
export async function welcomeInfo(
  deps: DsDeps,
  request: delivery.WelcomeInfoRequest,
): Promise<delivery.WelcomeInfoResponse> {
  const opened = openSigned(deps, request.signed, delivery.WelcomeInfoTbs, LABEL);
  const { tbs, header } = opened;
  const earKey = checkEarKey(request.groupStateEarKey);
  const uuid = localGroupId(deps, tbs.groupId, "tbs.group_id");
  if (header.sender?.$case !== "keyPackageRef")
    throw unauthenticated(
      common.ErrorReason.ERROR_REASON_UNKNOWN_SENDER,
      "header sender must be a key_package_ref",
    );
  const group = await readGroupState(deps, uuid, earKey);
  const joiner = group.welcomeJoiner(tbs.epoch, header.sender.value);
  // A released tree is NOT_FOUND before the signature check: the DS no longer knows that
  // epoch's joiners, and the request already proved knowledge of the EAR key.
  if (joiner === "released") throw notKept(tbs.epoch);
  verifyRequest(deps, opened, joiner.signatureKey, "the KeyPackage (not added in that epoch)");
  if (joiner.expired) throw notKept(tbs.epoch);
  const info = group.welcomeInfo(tbs.epoch);
  if (info === undefined) throw notKept(tbs.epoch);
  return info;
}

function notKept(epoch: bigint): NotFoundError {
  return new NotFoundError(`the tree of epoch ${epoch} is no longer kept`);
}
