import { status } from "@grpc/grpc-js";
import {
  AsCredential,
  AsIntermediateCredential,
  ClientCredential,
  CredentialVerifier,
  SigningKey,
  toHex,
} from "@phoenix/crypto";
import { auth, common } from "@phoenix/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addClient,
  csrOf,
  expectStatus,
  type Harness,
  registerUser,
  S,
  signAs,
  startAuth,
  type TestClient,
} from "./support/harness.js";

const Reason = common.ErrorReason;
const DAY = 24 * 3_600_000;

function reasonOf(error: {
  details: readonly { typeUrl: string; value: Uint8Array }[];
}): common.ErrorReason | undefined {
  const detail = error.details.find((d) => d.typeUrl.endsWith("phoenix.common.v1.ErrorDetail"));
  return detail ? common.ErrorDetail.decode(detail.value).reason : undefined;
}

async function listClientsAs(h: Harness, client: Pick<TestClient, "key" | "wireId">) {
  return h.as.listClients({
    signed: await signAs(client, auth.ListClientsTbs, S.listClients, { userId: client.wireId.user }, h.now()),
  });
}

async function renewAs(h: Harness, client: TestClient, key: SigningKey = client.key) {
  return h.as.renewClientCredential({
    signed: await signAs(
      client,
      auth.RenewClientCredentialTbs,
      S.renewClientCredential,
      { clientCsr: csrOf({ key, clientId: client.clientId }, h.now()) },
      h.now(),
    ),
  });
}

describe("client credential revocation and expiry", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuth();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("refuses every request of a revoked client credential with UNAUTHENTICATED, renewal included", async () => {
    const alice = await registerUser(h);
    const phone = await addClient(h, alice);
    await listClientsAs(h, alice);

    await h.service.keyring.revoke(ClientCredential.decode(alice.credential).fingerprint);

    const error = await expectStatus(listClientsAs(h, alice), status.UNAUTHENTICATED);
    expect(error.statusMessage).toContain("client credential has been revoked");
    expect(reasonOf(error)).toBe(Reason.ERROR_REASON_INVALID_CREDENTIAL);
    // A stolen key cannot launder itself into a fresh credential.
    await expectStatus(renewAs(h, alice, SigningKey.generate()), status.UNAUTHENTICATED);

    // The user's other client is unaffected and removes the revoked one.
    expect((await listClientsAs(h, phone)).clients).toHaveLength(2);
    await h.as.deleteClient({
      signed: await signAs(phone, auth.DeleteClientTbs, S.deleteClient, { clientId: alice.wireId }, h.now()),
    });
    expect((await listClientsAs(h, phone)).clients).toHaveLength(1);
  });

  it("refuses clients under a revoked intermediate until they renew under the new one", async () => {
    const bob = await registerUser(h);
    const intermediate = ClientCredential.decode(bob.credential).signerFingerprint;
    await h.service.keyring.revoke(intermediate);

    const error = await expectStatus(listClientsAs(h, bob), status.UNAUTHENTICATED);
    expect(error.statusMessage).toContain("intermediate");
    expect(reasonOf(error)).toBe(Reason.ERROR_REASON_INVALID_CREDENTIAL);

    const renewed = ClientCredential.decode((await renewAs(h, bob)).clientCredential);
    expect(toHex(renewed.signerFingerprint)).not.toBe(toHex(intermediate));
    const published = await h.as.getAsCredentials({ domain: "" });
    const verifier = new CredentialVerifier({ revoked: published.revokedFingerprints });
    for (const root of published.asCredentials) verifier.addRoot(AsCredential.decode(root));
    for (const i of published.asIntermediateCredentials) {
      verifier.addIntermediate(AsIntermediateCredential.decode(i));
    }
    expect(toHex(verifier.verifyClientCredential(renewed).clientId.clientUuid)).toBe(
      toHex(bob.clientId.clientUuid),
    );
    expect((await listClientsAs(h, bob)).clients).toHaveLength(1);
  });

  it("refuses a client whose credential has expired", async () => {
    const carol = await registerUser(h); // credential valid for 30 days (csrOf)
    await listClientsAs(h, carol);
    h.advance(31 * DAY);
    const error = await expectStatus(listClientsAs(h, carol), status.UNAUTHENTICATED);
    expect(error.statusMessage).toContain("expired");
    expect(reasonOf(error)).toBe(Reason.ERROR_REASON_INVALID_CREDENTIAL);
  });
});
