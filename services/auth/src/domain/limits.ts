/** Field limits documented in auth.proto ("Limit: …"); exceeding one is RESOURCE_EXHAUSTED. */
export const Limits = {
  clientCsr: 4 * 1024,
  encryptedUserProfile: 64 * 1024,
  connectionPackage: 4 * 1024,
  connectionPackagesPerPublish: 100,
  connectionOffer: 16 * 1024,
  inviteCode: 128,
  /** A profile key index (libs/crypto UserProfileKeyIndex). */
  keyIndex: 64,
  /** `Signed.tbs` of any request: the largest documented field plus headroom. */
  signedTbs: 512 * 1024,
} as const;
