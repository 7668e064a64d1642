export {
  type AuthenticatedSignedRequest,
  authenticateSignedRequest,
  checkRequestHeader,
  DEFAULT_REFUSALS,
  type OpenedEnvelope,
  openEnvelope,
  openSignedRequest,
  type ReplayClaim,
  type ReplayClaimer,
  replayParts,
  type SignedRequestPolicy,
  type SignedRequestRefusals,
  type SignerKey,
  type TbsWithHeader,
  verifyEnvelope,
} from "./authenticator.js";
export {
  type CheckedRequestHeader,
  type ExpectedHeader,
  type OpenedSignedRequest,
  REQUEST_ID_LENGTH,
  type RequestWindow,
} from "./signed-request.js";
