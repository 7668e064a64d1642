/** Metadata key correlating one request across services and log lines. */
export const REQUEST_ID_KEY = "x-request-id";
