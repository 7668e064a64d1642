/** Per-field size limits of the DS contract (delivery.proto "Limit:" comments), in bytes. */
export const LIMITS = {
  ratchetTree: 64 * 1024,
  createGroupInfo: 64 * 1024,
  clientInfo: 4 * 1024,
  profileKey: 1024,
  sealedQueueConfig: 1024,
  commit: 1024 * 1024,
  groupInfo: 1024 * 1024,
  welcome: 2 * 1024 * 1024,
  attributionInfo: 8 * 1024,
  proposal: 64 * 1024,
  applicationMessage: 1024 * 1024,
  /**
   * A WelcomeBundle's Welcome plus its sealed WelcomeInfo: larger bundles go without the sealed
   * info (the joiner calls WelcomeInfo) so they stay within the QS's 1 MiB queue payload.
   */
  welcomeBundle: 1000 * 1024,
} as const;
