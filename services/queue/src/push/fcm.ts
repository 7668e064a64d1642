import { createPrivateKey, type KeyObject } from "node:crypto";
import { queue } from "@phoenix/proto";
import { Http2Origin, ProviderUnreachableError } from "./http2-client.js";
import { signJwt } from "./jwt.js";
import type { PushNotifier, PushOutcome, PushRequest } from "./notifier.js";
import { type Attempt, ConcurrencyLimit, type ProviderOptions, retryAfterMs, withRetries } from "./retry.js";

export const FCM_ORIGIN = "https://fcm.googleapis.com";
/** The OAuth2 scope of FCM HTTP v1 sends. */
export const FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";

/** An access token is fetched again this long before it expires. */
const TOKEN_MARGIN_MS = 5 * 60_000;

/** FCM refused a push for a reason retrying does not cure (credentials, project, payload). */
export class FcmError extends Error {
  override readonly name = "FcmError";
}

/** The fields of a Google service-account key file (JSON) that an FCM sender needs. */
export interface ServiceAccount {
  projectId: string;
  clientEmail: string;
  privateKeyId: string;
  privateKey: KeyObject;
  tokenUri: string;
}

/** Reads a service-account key file's JSON; throws FcmError naming the missing field. */
export function parseServiceAccount(json: string): ServiceAccount {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(json) as Record<string, unknown>;
  } catch {
    throw new FcmError("the FCM service-account file is not JSON");
  }
  const field = (name: string): string => {
    const value = parsed[name];
    if (typeof value !== "string" || value === "") {
      throw new FcmError(`the FCM service-account file has no ${name}`);
    }
    return value;
  };
  const privateKey = createPrivateKey(field("private_key"));
  if (privateKey.asymmetricKeyType !== "rsa")
    throw new FcmError("the service account's private_key is not RSA");
  return {
    projectId: field("project_id"),
    clientEmail: field("client_email"),
    privateKeyId: field("private_key_id"),
    privateKey,
    tokenUri: field("token_uri"),
  };
}

export interface FcmNotifierOptions extends ProviderOptions {
  account: ServiceAccount;
  /** Default: the service account's token_uri. */
  tokenUri?: string;
}

interface FcmErrorBody {
  error?: {
    code?: number;
    message?: string;
    status?: string;
    details?: { "@type"?: string; errorCode?: string; fieldViolations?: { field?: string }[] }[];
  };
}

/**
 * Firebase Cloud Messaging HTTP v1: an OAuth2 access token from the service account (a JWT
 * grant signed RS256, cached until shortly before it expires), then a data-only message per
 * push with a collapse key per queue. UNREGISTERED, an INVALID_ARGUMENT about the token and
 * SENDER_ID_MISMATCH answer "unregistered"; 429 and 5xx are retried (Retry-After honoured); 401
 * fetches a new access token.
 */
export class FcmNotifier implements PushNotifier {
  private readonly fcm: Http2Origin;
  private readonly oauth: Http2Origin;
  private readonly tokenPath: string;
  private readonly tokenUri: string;
  private readonly now: () => number;
  private readonly limit: ConcurrencyLimit;
  private access: Promise<{ token: string; expiresAt: number }> | undefined;

  constructor(private readonly options: FcmNotifierOptions) {
    this.now = options.now ?? Date.now;
    this.limit = new ConcurrencyLimit(options.maxInFlight ?? 100);
    const http = {
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    };
    this.fcm = new Http2Origin(options.origin ?? FCM_ORIGIN, http);
    this.tokenUri = options.tokenUri ?? options.account.tokenUri;
    const tokenUrl = new URL(this.tokenUri);
    if (tokenUrl.protocol !== "https:") throw new FcmError("the OAuth token URI must be https");
    this.oauth = new Http2Origin(tokenUrl.origin, http);
    this.tokenPath = `${tokenUrl.pathname}${tokenUrl.search}`;
  }

  async notify(token: queue.PushToken, request: PushRequest): Promise<PushOutcome> {
    if (token.provider !== queue.PushProvider.PUSH_PROVIDER_FCM) {
      throw new FcmError(`not an FCM token: ${queue.pushProviderToJSON(token.provider)}`);
    }
    return this.limit.run(() =>
      withRetries(this.options.retry ?? {}, () => this.attempt(token.token, request)),
    );
  }

  async close(): Promise<void> {
    this.fcm.close();
    this.oauth.close();
  }

  private async attempt(registrationToken: string, request: PushRequest): Promise<Attempt<PushOutcome>> {
    const access = await this.accessToken();
    const ttl = this.options.ttlMs ?? 24 * 3600_000;
    const response = await this.fcm.request(
      "POST",
      `/v1/projects/${encodeURIComponent(this.options.account.projectId)}/messages:send`,
      { authorization: `Bearer ${access}`, "content-type": "application/json; charset=utf-8" },
      JSON.stringify(fcmMessage(registrationToken, request.collapseId, ttl)),
    );
    if (response.status === 200) return { done: "sent" };
    const error = parseError(response.body);
    const code = error?.details?.find((d) => d.errorCode !== undefined)?.errorCode ?? error?.status ?? "";
    if (code === "UNREGISTERED" || code === "SENDER_ID_MISMATCH") return { done: "unregistered" };
    if (response.status === 400 && aboutTheToken(error)) return { done: "unregistered" };
    if (response.status === 401) {
      // The access token was revoked or expired early: the retry fetches a new one.
      this.access = undefined;
      return { retry: `FCM 401 ${code}`, retryAfterMs: 0 };
    }
    if (response.status === 429 || response.status >= 500) {
      const after = retryAfterMs(response.headers["retry-after"], this.now());
      return {
        retry: `FCM ${response.status} ${code}`,
        ...(after !== undefined ? { retryAfterMs: after } : {}),
      };
    }
    throw new FcmError(`FCM refused the push: ${response.status} ${code}`);
  }

  /** The cached access token, or a new one (one request at a time however many pushes wait). */
  private async accessToken(): Promise<string> {
    const cached = this.access;
    if (cached !== undefined) {
      const current = await cached.catch(() => undefined);
      if (current !== undefined && this.now() < current.expiresAt - TOKEN_MARGIN_MS) return current.token;
      if (this.access === cached) this.access = undefined;
    }
    this.access ??= this.fetchAccessToken();
    const pending = this.access;
    try {
      return (await pending).token;
    } catch (error) {
      if (this.access === pending) this.access = undefined;
      throw error;
    }
  }

  private async fetchAccessToken(): Promise<{ token: string; expiresAt: number }> {
    const { account } = this.options;
    const iat = Math.floor(this.now() / 1000);
    const assertion = signJwt(
      "RS256",
      account.privateKey,
      { typ: "JWT", kid: account.privateKeyId },
      { iss: account.clientEmail, scope: FCM_SCOPE, aud: this.tokenUri, iat, exp: iat + 3600 },
    );
    const response = await this.oauth.request(
      "POST",
      this.tokenPath,
      { "content-type": "application/x-www-form-urlencoded" },
      new URLSearchParams({
        grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
        assertion,
      }).toString(),
    );
    if (response.status >= 500 || response.status === 429) {
      throw new ProviderUnreachableError(`OAuth token endpoint answered ${response.status}`);
    }
    let body: { access_token?: unknown; expires_in?: unknown; error?: unknown };
    try {
      body = JSON.parse(response.body) as typeof body;
    } catch {
      body = {};
    }
    if (response.status !== 200 || typeof body.access_token !== "string") {
      throw new FcmError(
        `no OAuth access token: ${response.status} ${typeof body.error === "string" ? body.error : ""}`,
      );
    }
    const lifetime = typeof body.expires_in === "number" ? body.expires_in * 1000 : 3600_000;
    return { token: body.access_token, expiresAt: this.now() + lifetime };
  }
}

/**
 * The whole message: the token, a fixed marker and delivery options — no message, sender or
 * group. High priority so a dozing device wakes to fetch its queue.
 */
export function fcmMessage(registrationToken: string, collapseKey: string, ttlMs: number): object {
  return {
    message: {
      token: registrationToken,
      data: { type: "queue_activity" },
      android: { collapse_key: collapseKey, priority: "HIGH", ttl: `${Math.floor(ttlMs / 1000)}s` },
    },
  };
}

function parseError(body: string): FcmErrorBody["error"] {
  try {
    return (JSON.parse(body) as FcmErrorBody).error;
  } catch {
    return undefined;
  }
}

/** An INVALID_ARGUMENT that names the registration token (not the rest of the message). */
function aboutTheToken(error: FcmErrorBody["error"]): boolean {
  if (error === undefined) return false;
  const violations = error.details?.flatMap((d) => d.fieldViolations ?? []) ?? [];
  if (violations.some((v) => v.field === "message.token")) return true;
  return /registration token/i.test(error.message ?? "");
}
