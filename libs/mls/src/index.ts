export {
  commitRemovesMembers,
  EAR_KEY_EXPORTER_LABEL,
  exportGroupStateEarKey,
} from "./client/ear-key.js";
export {
  decodeRoles,
  encodeRoles,
  isLastResort,
  PHOENIX_EXTENSION_TYPES,
  queueConfigOf,
  type Role,
  type RoleAssignment,
  type RoleSubject,
  RolesDecodeError,
  roleOf,
  rolesExtension,
  rolesOf,
} from "./client/extensions.js";
export {
  addMembers,
  ClientStateDecodeError,
  type CommitOutput,
  type CreateGroupInput,
  commitPendingProposals,
  createKeyPackage,
  createPhoenixGroup,
  decodeClientState,
  encodeClientState,
  encryptMessage,
  type IncomingResult,
  joinExternally,
  joinFromWelcome,
  type KeyPackageInput,
  phoenixCapabilities,
  processIncoming,
  proposalsRemoveLeaf,
  proposeSelfRemove,
  type ResyncInput,
  ResyncLeafNotFoundError,
  removeMembers,
  resync,
  type SendOptions,
  setRoles,
  UnexpectedMessageError,
  updateOwnLeaf,
} from "./client/group-client.js";
export { JoinError, joinGroupByExternalCommit, joinGroupFromWelcome } from "./client/join.js";
export {
  createNodeCryptoProvider,
  HpkeOpenError,
  type NodeCryptoProviderOptions,
  nodeCryptoProvider,
  PHOENIX_CIPHERSUITE,
} from "./node-crypto-provider.js";
export * from "./public-group/errors.js";
export type { CredentialValidator, LeafCheckEnv, LeafContext } from "./public-group/leaf-validation.js";
export { parseGroupInfo, parseMlsMessage, parsePublicMessage } from "./public-group/messages.js";
export {
  type AcceptedProposal,
  type AddedMember,
  type AppliedProposal,
  type CommitSender,
  type MergeOptions,
  PublicGroup,
  type PublicGroupOptions,
  type RemovedMember,
  type StagedCommit,
} from "./public-group/public-group.js";
export type { PendingProposal } from "./public-group/state-codec.js";
export { assertUnmergedLeaves, validateRatchetTree } from "./tree-validation.js";
