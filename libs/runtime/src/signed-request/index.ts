export {
  type CheckedRequestHeader,
  checkRequestHeader,
  type ExpectedHeader,
  type OpenedSignedRequest,
  openSignedRequest,
  REQUEST_ID_LENGTH,
  type RequestWindow,
} from "./signed-request.js";
