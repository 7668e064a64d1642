// Handing a group this user's profile key after joining: it may have to wait until the client
// processed a commit that rotated the group's EAR key.
import { encryptUserProfileKey } from "@phoenix/crypto";
import { delivery } from "@phoenix/proto";
import { DS } from "../constants.js";
import type { ClientCore } from "../core/client-core.js";
import { dsSigned } from "../core/conversations.js";
import { earKeyRotated, leafUnknownToDs, outcomeUnknown } from "./ds-errors.js";

/** Key-value entry: this client's profile key still has to reach the group's DS. */
function profileKeyDueKey(id: string): string {
  return `profile-key-due:${id}`;
}

/**
 * Hands the group our user profile key (encrypted under its profile-key key) so members can read
 * our profile. Done after joining; when the group's EAR key rotated since the Welcome was made,
 * it waits until this client processed the rotating commit (commitPending retries it); so does
 * an upload that found the DS unreachable. A joiner removed before it came online has nothing to
 * hand over.
 */
export async function uploadProfileKey(core: ClientCore, id: string): Promise<void> {
  const joined = core.conversations.row(id);
  if (joined.status !== "active" || joined.state === undefined) {
    forgetProfileKeyDue(core, id);
    return;
  }
  try {
    await core.transport.delivery.updateProfileKey({
      signed: await dsSigned(joined, delivery.UpdateProfileKeyTbs, DS.updateProfileKey, {
        groupId: joined.groupId,
        encryptedUserProfileKey: encryptUserProfileKey(
          joined.profileKeyKey,
          core.identity.user,
          core.account.profileKey,
        ),
      }),
      groupStateEarKey: joined.earKey,
    });
  } catch (error) {
    // The group's EAR key rotated since (wait for the commit), or the DS could not be reached
    // (try again later): the upload stays due, and commitPending retries it. Sending the key
    // twice is harmless (the DS keeps the latest).
    if (earKeyRotated(error) || outcomeUnknown(error)) {
      core.store.setJson(profileKeyDueKey(id), true);
      return;
    }
    if (!leafUnknownToDs(error)) throw error;
  }
  forgetProfileKeyDue(core, id);
}

/** Whether a profile-key upload waits for this conversation (see {@link uploadProfileKey}). */
export function profileKeyDue(core: ClientCore, id: string): boolean {
  return core.store.getJson(profileKeyDueKey(id)) !== undefined;
}

/** Drops a waiting profile-key upload (this client left the group). */
export function forgetProfileKeyDue(core: ClientCore, id: string): void {
  core.store.deleteKey(profileKeyDueKey(id));
}
