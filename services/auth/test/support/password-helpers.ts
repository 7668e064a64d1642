// The client side of account passwords (OPAQUE) for AS tests, played with the same library the
// AS uses (its default key stretching), as an app would.
import type { Metadata } from "@grpc/grpc-js";
import { randomBytes } from "@phoenix/crypto";
import { auth, type common } from "@phoenix/proto";
import * as opaque from "@serenity-kit/opaque";
import { expect } from "vitest";
import { type Harness, S, signAs, type TestClient } from "./harness.js";

const bytes = (text: string) => new Uint8Array(Buffer.from(text, "base64url"));
const text = (b: Uint8Array) => Buffer.from(b).toString("base64url");

/** Sets (or replaces) the account password of `client`'s user, as the client library would. */
export async function setPassword(h: Harness, client: TestClient, password: string): Promise<void> {
  const start = opaque.client.startRegistration({ password });
  const { registrationResponse } = await h.as.startPasswordRegistration({
    signed: await signAs(
      client,
      auth.StartPasswordRegistrationTbs,
      S.startPasswordRegistration,
      { registrationRequest: bytes(start.registrationRequest) },
      h.now(),
    ),
  });
  const { registrationRecord } = opaque.client.finishRegistration({
    clientRegistrationState: start.clientRegistrationState,
    registrationResponse: text(registrationResponse),
    password,
  });
  await h.as.finishPasswordRegistration({
    signed: await signAs(
      client,
      auth.FinishPasswordRegistrationTbs,
      S.finishPasswordRegistration,
      { registrationRecord: bytes(registrationRecord) },
      h.now(),
    ),
  });
}

/** A started login and what the client made of the AS's answer (undefined: the password is wrong). */
export interface StartedLogin {
  loginId: Uint8Array;
  credentialResponse: Uint8Array;
  /** KE3 when the client could open the response with its password. */
  finalization: Uint8Array | undefined;
  sessionKey: string | undefined;
}

export async function startLogin(
  h: Harness,
  userId: common.UserId | undefined,
  password: string,
  options?: { metadata: Metadata },
): Promise<StartedLogin> {
  const start = opaque.client.startLogin({ password });
  const started = await h.as.startPasswordLogin(
    { userId, credentialRequest: bytes(start.startLoginRequest) },
    options,
  );
  const finished = opaque.client.finishLogin({
    clientLoginState: start.clientLoginState,
    loginResponse: text(started.credentialResponse),
    password,
  });
  return {
    loginId: started.loginId,
    credentialResponse: started.credentialResponse,
    finalization: finished && bytes(finished.finishLoginRequest),
    sessionKey: finished?.sessionKey,
  };
}

/**
 * Finishes a login: with the client's KE3 when it had one, else with what a guesser without the
 * password can send (random bytes of the right size).
 */
export function finishLogin(h: Harness, login: StartedLogin) {
  return h.as.finishPasswordLogin({
    loginId: login.loginId,
    credentialFinalization: login.finalization ?? randomBytes(64),
  });
}

/** A full login with the right password: the add-client grant. */
export async function loginForGrant(h: Harness, user: TestClient, password: string): Promise<Uint8Array> {
  const login = await startLogin(h, user.wireId.user, password);
  expect(login.finalization, "the client opens the AS's answer with the right password").toBeDefined();
  return (await finishLogin(h, login)).addClientGrant;
}
