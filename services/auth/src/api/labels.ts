import { auth, rpcLabel } from "@phoenix/proto";

/** The signature label of every signed AS RPC: its full name (see common.proto). */
export const Label = {
  registerUser: rpcLabel(auth.AuthServiceService.registerUser),
  deleteUser: rpcLabel(auth.AuthServiceService.deleteUser),
  addClient: rpcLabel(auth.AuthServiceService.addClient),
  renewClientCredential: rpcLabel(auth.AuthServiceService.renewClientCredential),
  listClients: rpcLabel(auth.AuthServiceService.listClients),
  deleteClient: rpcLabel(auth.AuthServiceService.deleteClient),
  stageUserProfile: rpcLabel(auth.AuthServiceService.stageUserProfile),
  mergeUserProfile: rpcLabel(auth.AuthServiceService.mergeUserProfile),
  createHandle: rpcLabel(auth.AuthServiceService.createHandle),
  refreshHandle: rpcLabel(auth.AuthServiceService.refreshHandle),
  deleteHandle: rpcLabel(auth.AuthServiceService.deleteHandle),
  publishConnectionPackages: rpcLabel(auth.AuthServiceService.publishConnectionPackages),
  publishHandleConnectionPackages: rpcLabel(auth.AuthServiceService.publishHandleConnectionPackages),
  dequeueConnectionOffers: rpcLabel(auth.AuthServiceService.dequeueConnectionOffers),
  listenConnectionOffers: rpcLabel(auth.AuthServiceService.listenConnectionOffers),
  dequeueHandleConnectionOffers: rpcLabel(auth.AuthServiceService.dequeueHandleConnectionOffers),
  listenHandleConnectionOffers: rpcLabel(auth.AuthServiceService.listenHandleConnectionOffers),
} as const;
