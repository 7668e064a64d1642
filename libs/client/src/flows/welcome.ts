// Joining a group from a Welcome: find the AddPackage it is for, read the epoch's tree and
// members (from the bundle or the DS's WelcomeInfo), store the conversation, hand over our
// profile key, and publish fresh AddPackages once the one-time ones are used up.
import {
  AeadLabel,
  decryptAtRest,
  formatUserId,
  openWelcomeAttribution,
  SigningKey,
  toHex,
} from "@phoenix/crypto";
import { joinFromWelcome, parseMlsMessage } from "@phoenix/mls";
import { type common, delivery } from "@phoenix/proto";
import { eq } from "drizzle-orm";
import type { Welcome } from "ts-mls";
import { decodeKeyPackage } from "ts-mls/keyPackage.js";
import { decodeRatchetTree } from "ts-mls/ratchetTree.js";
import { DS } from "../constants.js";
import type { ClientCore } from "../core/client-core.js";
import { hexBytes } from "../protocol/codecs.js";
import { mlsGroupId, signRequest, welcomeEpoch } from "../protocol/helpers.js";
import { u8 } from "../store/client-store.js";
import { decodePrivateKeyPackage } from "../store/codecs.js";
import * as t from "../store/schema.js";
import { outcomeUnknown } from "./ds-errors.js";
import { fetchProfiles, learnProfileKeys } from "./member-profiles.js";
import { profileKeyDue, uploadProfileKey } from "./profile-key.js";
import { addPackagesDue, publishAddPackages } from "./registration.js";

type AddPackageKeyRow = typeof t.addPackageKeys.$inferSelect;

/** Joins the group of a Welcome bundle; `pending` gets the group when a profile-key upload waits. */
export async function receiveWelcome(
  core: ClientCore,
  bundle: common.WelcomeBundle,
  pending: Set<string> = new Set(),
): Promise<void> {
  if (bundle.groupId === undefined) throw new Error("Welcome without group id");
  const groupId = bundle.groupId;
  const mlsId = mlsGroupId(groupId);
  // The inviter (and the members) may be of other domains.
  const attribution = await core.trust.withCredentials(() =>
    openWelcomeAttribution(bundle.encryptedWelcomeAttributionInfo, {
      friendshipEncryptionKey: core.account.friendshipEncryptionKey,
      groupId: mlsId,
      welcome: bundle.welcome,
      verifier: core.trust.verifier,
    }),
  );
  const parsed = parseMlsMessage(bundle.welcome);
  if (parsed.wireformat !== "mls_welcome") throw new Error("not a Welcome");
  const row = addPackageOf(core, parsed.welcome);
  const kp = decodeKeyPackage(u8(row.keyPackage), 0)?.[0];
  if (kp === undefined) throw new Error("stored KeyPackage is corrupt");
  const priv = decodePrivateKeyPackage(u8(row.privateKeyPackage));
  const epoch = await welcomeEpoch(parsed.welcome, kp, priv, core.cs);
  if (epoch === undefined) throw new Error("cannot read the Welcome's epoch");
  const leafKey = SigningKey.fromSeed(u8(row.leafSeed));
  const keys = attribution.groupKeys;
  const info = await welcomeInfoOf(
    core,
    { ...bundle, groupId },
    epoch,
    keys.groupStateEarKey,
    leafKey,
    row.ref,
  );
  const tree = decodeRatchetTree(info.ratchetTree, 0)?.[0];
  const state = await joinFromWelcome(bundle.welcome, kp, priv, core.cs, tree);
  const id = toHex(mlsId);
  const inviter = formatUserId(attribution.sender.userId);
  let learned: string[] = [];
  await core.trust.withCredentials(() =>
    core.store.transaction(() => {
      core.store.db.delete(t.conversations).where(eq(t.conversations.id, id)).run();
      core.members.forget(id);
      core.conversations.insert({
        id,
        groupId,
        kind: "group",
        // Until the inviter's title message arrives (the inviter is a contact: its name is known).
        title: `group of ${core.profiles.nameOf(inviter) ?? inviter}`,
        earKey: keys.groupStateEarKey,
        credentialKey: keys.credentialEncryptionKey,
        profileKeyKey: keys.userProfileKeyEncryptionKey,
        state,
        leaf: {
          leafKey,
          leafCredential: u8(row.leafCredential),
          signatureEncryptionKey: u8(row.signatureEncryptionKey),
        },
        peerUserId: null,
      });
      core.members.recordMembers(id, state, info.members, keys.credentialEncryptionKey);
      core.members.recordSelf(id, state.privatePath.leafIndex);
      // Who came in with this client: the leaves the same commit added (when the DS said so).
      const self = core.identity.userId;
      const fellows = info.addedLeafIndices
        .map((leaf) => core.members.memberAt(id, leaf))
        .filter((u): u is string => u !== undefined && u !== self);
      core.conversations.insertEvent(
        id,
        { type: "added", actor: inviter, users: [self, ...new Set(fellows)] },
        false,
      );
      learned = learnProfileKeys(core, core.conversations.row(id), info.members);
      if (!row.lastResort)
        core.store.db.delete(t.addPackageKeys).where(eq(t.addPackageKeys.ref, row.ref)).run();
    }),
  );
  // A joiner removed before it came online is no longer in the group: nothing to hand over, and
  // the commit removing it follows in the queue.
  await uploadProfileKey(core, id);
  // The members' names, from the profile keys they handed the group (best effort).
  await fetchProfiles(core, learned);
  if (profileKeyDue(core, id)) pending.add(id);
  const left = core.store.db
    .select()
    .from(t.addPackageKeys)
    .all()
    .filter((r) => !r.lastResort).length;
  // New AddPackages once the last ordinary one is used, or when the last publish did not go
  // through. The join above stands whatever happens here: a QS out of reach is not a reason to
  // report the Welcome unprocessed (the next Welcome tries again; meanwhile inviters get the
  // last-resort package).
  if (left === 0 || addPackagesDue(core))
    await publishAddPackages(core).catch((error: unknown) => {
      if (!outcomeUnknown(error)) throw error;
    });
}

/** The stored AddPackage keys the Welcome is addressed to. */
function addPackageOf(core: ClientCore, welcome: Welcome): AddPackageKeyRow {
  const refs = new Set(welcome.secrets.map((s) => toHex(s.newMember)));
  const row = core.store.db
    .select()
    .from(t.addPackageKeys)
    .all()
    .find((r) => refs.has(r.ref));
  if (row === undefined) throw new Error("the Welcome is for none of our AddPackages");
  return row;
}

/**
 * What the Welcome's epoch looked like (tree, members): from the bundle, where the DS sealed it
 * under the EAR key the inviter handed us, else from WelcomeInfo.
 */
async function welcomeInfoOf(
  core: ClientCore,
  bundle: common.WelcomeBundle & { groupId: common.QualifiedGroupId },
  epoch: bigint,
  earKey: Uint8Array,
  leafKey: SigningKey,
  keyPackageRef: string,
): Promise<delivery.WelcomeInfoResponse> {
  if (bundle.encryptedWelcomeInfo.length > 0) {
    const mlsId = mlsGroupId(bundle.groupId);
    const aad = new Uint8Array(mlsId.length + 8);
    aad.set(mlsId, 0);
    new DataView(aad.buffer).setBigUint64(mlsId.length, epoch);
    return delivery.WelcomeInfoResponse.decode(
      decryptAtRest(earKey, AeadLabel.WelcomeInfo, bundle.encryptedWelcomeInfo, { aad }),
    );
  }
  return core.transport.delivery.welcomeInfo({
    signed: await signRequest(
      delivery.WelcomeInfoTbs,
      DS.welcomeInfo,
      { groupId: bundle.groupId, epoch },
      leafKey,
      { $case: "keyPackageRef", value: hexBytes(keyPackageRef) },
    ),
    groupStateEarKey: earKey,
  });
}
