import { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";
import { credentialIdentifier } from "../domain/opaque.js";
import { deleteGrantsOf, putPasswordRecord } from "../store/passwords.js";
import { asClient } from "./authenticate.js";

/**
 * FinishPasswordRegistration: stores the user's OPAQUE registration record, replacing the old
 * one (the old password stops working, logins started against it fail) and withdrawing unused
 * add-client grants, in one transaction.
 */
export async function finishPasswordRegistration(
  ctx: AuthContext,
  request: auth.FinishPasswordRegistrationRequest,
): Promise<auth.FinishPasswordRegistrationResponse> {
  const userUuid = await asClient(
    ctx,
    request,
    auth.FinishPasswordRegistrationTbs,
    auth.AuthServiceService.finishPasswordRegistration,
    async ({ tbs, clientKey }, tx) => {
      const record = ctx.passwords.server.checkRecord(
        credentialIdentifier(clientKey.userUuid, ctx.config.AS_DOMAIN),
        tbs.registrationRecord,
        "tbs.registration_record",
      );
      await putPasswordRecord(tx, clientKey.userUuid, record);
      await deleteGrantsOf(tx, clientKey.userUuid);
      return clientKey.userUuid;
    },
  );
  ctx.log.info(
    { rpc: "FinishPasswordRegistration", user: ctx.passwords.auditTag(userUuid) },
    "account password set",
  );
  return {};
}
