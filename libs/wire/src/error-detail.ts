import { common } from "@phoenix/proto";
import { type StatusDetail, statusDetail } from "./status-details.js";

/** The type name every Phoenix refusal carries its machine-readable reason under. */
export const ERROR_DETAIL_TYPE = "phoenix.common.v1.ErrorDetail";

/** `detail` packed as a status detail (`grpc-status-details-bin`). */
export function errorDetail(detail: common.ErrorDetail): StatusDetail {
  return statusDetail(ERROR_DETAIL_TYPE, common.ErrorDetail.encode(detail).finish());
}
