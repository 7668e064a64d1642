import { type CiphersuiteImpl, type ClientState, mlsExporter } from "ts-mls";
import { parseMlsMessage } from "../public-group/messages.js";

/** MLS exporter label of the group-state EAR key (distinct from every other exported secret). */
export const EAR_KEY_EXPORTER_LABEL = "phoenix ear key";
const EAR_KEY_LENGTH = 32;

/**
 * The group-state EAR key of the epoch `state` is in, as members derive it after a commit that
 * removed someone: MLS exporter ("phoenix ear key", context = the MLS group id, 32 bytes). Only
 * members of that epoch can compute it, so a removed member's old key stops opening the state
 * the DS writes from then on.
 */
export function exportGroupStateEarKey(state: ClientState, cs: CiphersuiteImpl): Promise<Uint8Array> {
  return mlsExporter(
    state.keySchedule.exporterSecret,
    EAR_KEY_EXPORTER_LABEL,
    state.groupContext.groupId,
    EAR_KEY_LENGTH,
    cs,
  );
}

/**
 * Whether `commit` (an MLSMessage) is a commit by a member that removes someone — a Remove
 * proposal by value, or by reference to a stored proposal of `stateBefore` (the state the commit
 * applies to). That is the rule of EAR-key rotation: committer, members and the DS apply the
 * same test. External commits (joins, resyncs) never rotate.
 */
export function commitRemovesMembers(stateBefore: ClientState, commit: Uint8Array): boolean {
  const msg = parseMlsMessage(commit);
  if (msg.wireformat !== "mls_public_message") return false;
  const content = msg.publicMessage.content;
  if (content.contentType !== "commit" || content.sender.senderType !== "member") return false;
  return content.commit.proposals.some((p) => {
    if (p.proposalOrRefType === "proposal") return p.proposal.proposalType === "remove";
    const stored = stateBefore.unappliedProposals[Buffer.from(p.reference).toString("base64")];
    return stored?.proposal.proposalType === "remove";
  });
}
