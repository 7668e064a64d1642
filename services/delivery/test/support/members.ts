// Test members as clients build them: an AS PKI issuing client credentials, Phoenix leaf
// credentials under a per-group user pseudonym, KeyPackages carrying a queue reference. No I/O.
import { randomBytes } from "node:crypto";
import {
  AsCredential,
  AsIntermediateCredential,
  AsIntermediateCsr,
  ClientCredential,
  ClientCredentialCsr,
  LeafCredential,
  SigningKey,
} from "@phoenix/crypto";
import { createKeyPackage } from "@phoenix/mls";
import { common } from "@phoenix/proto";
import type { CiphersuiteImpl, ClientState, Credential, KeyPackage, PrivateKeyPackage } from "ts-mls";

export const DOMAIN = "alpha.example";
const DAY = 86_400_000;

/** A one-domain AS PKI for issuing client credentials. */
export class Pki {
  private readonly intermediateKey = SigningKey.generate();
  readonly intermediate: AsIntermediateCredential;

  constructor() {
    const rootKey = SigningKey.generate();
    const validity = { notBefore: Date.now() - DAY, notAfter: Date.now() + 3650 * DAY };
    const root = AsCredential.issue(rootKey, DOMAIN, validity);
    this.intermediate = AsIntermediateCredential.issue(
      rootKey,
      root,
      AsIntermediateCsr.create(this.intermediateKey, DOMAIN, {
        notBefore: validity.notBefore,
        notAfter: Date.now() + 3000 * DAY,
      }),
    );
  }

  client(): { clientKey: SigningKey; clientCredential: ClientCredential } {
    const clientKey = SigningKey.generate();
    const clientCredential = ClientCredential.issue(
      this.intermediateKey,
      this.intermediate,
      ClientCredentialCsr.create(
        clientKey,
        {
          clientUuid: new Uint8Array(randomBytes(16)),
          userId: { uuid: new Uint8Array(randomBytes(16)), domain: DOMAIN },
        },
        { notBefore: Date.now() - DAY, notAfter: Date.now() + 2000 * DAY },
      ),
    );
    return { clientKey, clientCredential };
  }
}

/** One client of one user in one group: leaf credential, signature key, KeyPackage, queue, MLS state. */
export class Member {
  state: ClientState | undefined;
  constructor(
    readonly name: string,
    readonly pseudonym: Uint8Array,
    readonly signingKey: SigningKey,
    readonly credential: Credential,
    readonly keyPackage: KeyPackage,
    readonly privateKeyPackage: PrivateKeyPackage,
    readonly queue: common.QsReference,
  ) {}

  get leaf(): number {
    if (this.state === undefined) throw new Error(`${this.name} is not in the group`);
    return this.state.privatePath.leafIndex;
  }

  mls(): ClientState {
    if (this.state === undefined) throw new Error(`${this.name} is not in the group`);
    return this.state;
  }
}

/** A user: one pseudonym per group, any number of clients. */
export class User {
  readonly pseudonym = new Uint8Array(randomBytes(16));
  constructor(
    readonly name: string,
    private readonly pki: Pki,
    private readonly cs: CiphersuiteImpl,
  ) {}

  /** A new client; `keyPackageLifetimeSeconds` bounds its KeyPackage (default: libs/mls's). */
  async client(name = this.name, options: { keyPackageLifetimeSeconds?: number } = {}): Promise<Member> {
    const { clientKey, clientCredential } = this.pki.client();
    const signingKey = SigningKey.generate();
    const { leaf } = LeafCredential.issue({
      clientKey,
      clientCredential,
      leafKey: signingKey.verifyingKey,
      expiration: { notBefore: Date.now() - DAY, notAfter: Date.now() + 1000 * DAY },
      identity: this.pseudonym,
    });
    const credential: Credential = { credentialType: "basic", identity: leaf.bytes };
    const queue = { domain: DOMAIN, sealedQueueConfig: new Uint8Array(randomBytes(48)) };
    const kp = await createKeyPackage({
      cipherSuite: this.cs,
      credential,
      queueConfig: common.QsReference.encode(queue).finish(),
      signatureKeyPair: { signKey: signingKey.exportSeed(), publicKey: signingKey.publicKey },
      ...(options.keyPackageLifetimeSeconds !== undefined
        ? { lifetimeSeconds: options.keyPackageLifetimeSeconds }
        : {}),
    });
    return new Member(
      name,
      this.pseudonym,
      signingKey,
      credential,
      kp.publicPackage,
      kp.privatePackage,
      queue,
    );
  }
}
