export {
  createNodeCryptoProvider,
  type NodeCryptoProviderOptions,
  nodeCryptoProvider,
  PHOENIX_CIPHERSUITE,
} from "./node-crypto-provider.js";
export { HpkeOpenError } from "./node-hpke.js";
