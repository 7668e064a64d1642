export {
  type AuthenticatedSignedRequest,
  authenticateSignedRequest,
  DEFAULT_REFUSALS,
  type OpenedEnvelope,
  openEnvelope,
  type ReplayClaimer,
  type SignedRequestPolicy,
  type SignedRequestRefusals,
  type SignerKey,
  type TbsWithHeader,
} from "./authenticator.js";
export {
  type CheckedRequestHeader,
  checkRequestHeader,
  type ExpectedHeader,
  type OpenedSignedRequest,
  openSignedRequest,
  REQUEST_ID_LENGTH,
  type RequestWindow,
} from "./signed-request.js";
