// What group and connection conversations share: creating the MLS group on the DS (this client
// its only member and admin) and sending an application message into it.
import { encryptUserProfileKey, generateAeadKey, sealClientInfo, toHex } from "@phoenix/crypto";
import { createPhoenixGroup, encryptMessage } from "@phoenix/mls";
import { delivery } from "@phoenix/proto";
import { encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { DS } from "../constants.js";
import type { ClientCore } from "../core/client-core.js";
import { type ConversationRow, dsSigned, stateOf } from "../core/conversations.js";
import { encodeAppContent, mlsGroupId, signRequest } from "../protocol/helpers.js";
import { callOnce } from "./ds-errors.js";

/** Creates a group on the DS with this client as its only member (and admin) and stores it. */
export async function createGroup(
  core: ClientCore,
  kind: "group" | "connection",
  title: string,
  peer: string | null,
): Promise<ConversationRow> {
  const { groupId } = await core.transport.delivery.requestGroupId({});
  if (groupId === undefined) throw new Error("the DS returned no group id");
  const leaf = await core.identity.newLeaf();
  const { state, groupInfo } = await createPhoenixGroup({
    cipherSuite: core.cs,
    groupId: mlsGroupId(groupId),
    keyPackage: leaf.keyPackage,
    privateKeyPackage: leaf.privateKeyPackage,
    roles: [{ subject: { kind: "pseudonym", pseudonym: leaf.leaf.identity }, role: "admin" }],
  });
  const earKey = generateAeadKey();
  const credentialKey = generateAeadKey();
  const profileKeyKey = kind === "connection" ? credentialKey : generateAeadKey();
  await core.transport.delivery.createGroup({
    signed: await signRequest(
      delivery.CreateGroupTbs,
      DS.createGroup,
      {
        groupId,
        ratchetTree: encodeRatchetTree(state.ratchetTree),
        groupInfo,
        creatorClientInfo: sealClientInfo(
          credentialKey,
          "group",
          leaf.leaf.bytes,
          core.identity.credential,
          leaf.signatureEncryptionKey,
        ),
        creatorQueue: core.identity.qsReference(),
        encryptedUserProfileKey: encryptUserProfileKey(
          profileKeyKey,
          core.identity.user,
          core.account.profileKey,
        ),
      },
      leaf.leafKey,
      { $case: "leafIndex", value: 0 },
    ),
    groupStateEarKey: earKey,
  });
  const id = toHex(mlsGroupId(groupId));
  core.store.transaction(() => {
    core.conversations.insert({
      id,
      groupId,
      kind,
      title,
      earKey,
      credentialKey,
      profileKeyKey,
      state,
      leaf,
      peerUserId: peer,
    });
    core.members.add(id, 0, core.identity.userId);
  });
  return core.conversations.row(id);
}

/**
 * Encrypts an application message for the group, sends it through the DS, stores the new state
 * and, in the same transaction, whatever `alsoStore` writes (the sent message's row).
 */
export async function sendApp(
  core: ClientCore,
  c: ConversationRow,
  content: Parameters<typeof encodeAppContent>[0],
  alsoStore?: () => void,
): Promise<void> {
  const { newState, message } = await encryptMessage(stateOf(c), core.cs, encodeAppContent(content));
  const request = {
    signed: await dsSigned(c, delivery.SendMessageTbs, DS.sendMessage, {
      groupId: c.groupId,
      message,
      suppressNotifications: false,
    }),
    groupStateEarKey: c.earKey,
  };
  await callOnce(() => core.transport.delivery.sendMessage(request));
  core.store.transaction(() => {
    core.conversations.saveState(c.id, newState);
    alsoStore?.();
  });
}
