export * as common from "./gen/phoenix/common/v1/common.js";
