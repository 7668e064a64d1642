import { auth, rpcLabel } from "@phoenix/proto";
import { describe, expect, it } from "vitest";

// The signature label of every signed AS RPC as it goes over the wire: clients (libs/client)
// sign with these exact bytes, so a change here breaks every deployed client.
const WIRE_LABELS = {
  registerUser: "phoenix.auth.v1.AuthService/RegisterUser",
  deleteUser: "phoenix.auth.v1.AuthService/DeleteUser",
  addClient: "phoenix.auth.v1.AuthService/AddClient",
  renewClientCredential: "phoenix.auth.v1.AuthService/RenewClientCredential",
  listClients: "phoenix.auth.v1.AuthService/ListClients",
  deleteClient: "phoenix.auth.v1.AuthService/DeleteClient",
  startPasswordRegistration: "phoenix.auth.v1.AuthService/StartPasswordRegistration",
  finishPasswordRegistration: "phoenix.auth.v1.AuthService/FinishPasswordRegistration",
  deletePassword: "phoenix.auth.v1.AuthService/DeletePassword",
  addClientWithGrant: "phoenix.auth.v1.AuthService/AddClientWithGrant",
  stageUserProfile: "phoenix.auth.v1.AuthService/StageUserProfile",
  mergeUserProfile: "phoenix.auth.v1.AuthService/MergeUserProfile",
  createHandle: "phoenix.auth.v1.AuthService/CreateHandle",
  refreshHandle: "phoenix.auth.v1.AuthService/RefreshHandle",
  deleteHandle: "phoenix.auth.v1.AuthService/DeleteHandle",
  publishConnectionPackages: "phoenix.auth.v1.AuthService/PublishConnectionPackages",
  publishHandleConnectionPackages: "phoenix.auth.v1.AuthService/PublishHandleConnectionPackages",
  dequeueConnectionOffers: "phoenix.auth.v1.AuthService/DequeueConnectionOffers",
  listenConnectionOffers: "phoenix.auth.v1.AuthService/ListenConnectionOffers",
  dequeueHandleConnectionOffers: "phoenix.auth.v1.AuthService/DequeueHandleConnectionOffers",
  listenHandleConnectionOffers: "phoenix.auth.v1.AuthService/ListenHandleConnectionOffers",
} as const;

const bytes = (s: string) => [...new TextEncoder().encode(s)];

describe("AS signature labels", () => {
  it("the label derived from each signed RPC's method is the wire label, byte for byte", () => {
    for (const [method, wire] of Object.entries(WIRE_LABELS)) {
      const derived = rpcLabel(auth.AuthServiceService[method as keyof typeof WIRE_LABELS]);
      expect(bytes(derived), method).toEqual(bytes(wire));
    }
  });

  it("names every AS RPC whose request carries a signed envelope", () => {
    // A signed RPC's request signs a `<Rpc>Tbs` message (auth.proto's convention).
    const signedRpcs = Object.keys(auth.AuthServiceService)
      .filter((name) => `${name[0]?.toUpperCase()}${name.slice(1)}Tbs` in auth)
      .sort();
    expect(signedRpcs).toEqual(Object.keys(WIRE_LABELS).sort());
  });
});
