export {
  createNodeCryptoProvider,
  type NodeCryptoProviderOptions,
  nodeCryptoProvider,
  PHOENIX_CIPHERSUITE,
} from "./node-crypto-provider.js";
export { HpkeOpenError } from "./node-hpke.js";
export * from "./public-group/errors.js";
export type { CredentialValidator, LeafContext } from "./public-group/leaf-validation.js";
export { parseGroupInfo, parsePublicMessage } from "./public-group/messages.js";
export {
  type AcceptedProposal,
  type AddedMember,
  type AppliedProposal,
  type CommitSender,
  PublicGroup,
  type PublicGroupOptions,
  type RemovedMember,
  type StagedCommit,
} from "./public-group/public-group.js";
export type { PendingProposal } from "./public-group/state-codec.js";
