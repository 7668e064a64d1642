import { type Database, deleteAdminAuditBefore, transaction } from "@phoenix/runtime/db";
import type { Logger } from "@phoenix/runtime/log";
import type { Worker } from "@phoenix/runtime/module";
import { sweepSeenRequests } from "@phoenix/runtime/replay";
import { deleteExpiredIntermediates, deleteRevocationsBefore } from "./store/as-credentials.js";
import { deleteExpiredCredentialClients, deleteInactiveClients } from "./store/clients.js";
import { deleteExpiredPackages } from "./store/connection-packages.js";
import { deleteExpiredOffers } from "./store/connection-queues.js";
import { deleteExpiredHandles } from "./store/handles.js";
import { deleteExpiredGrants, deleteExpiredLogins } from "./store/passwords.js";

/** What one expiry run removed. */
export interface ExpiryReport {
  handles: number;
  connectionPackages: number;
  /** Connection offers past AS_QUEUE_MESSAGE_TTL. */
  queuedOffers: number;
  /** Clients inactive for longer than AS_CLIENT_INACTIVITY_LIMIT. */
  clients: number;
  /** Clients whose credential expired (they cannot authenticate, not even to renew it). */
  expiredCredentials: number;
  /** Users left without clients by either. */
  users: number;
  /** AS intermediate credentials past their notAfter (every client credential they signed expired too). */
  intermediates: number;
  requestIds: number;
  /** Revocations older than any credential they could concern (see {@link ExpiryLifetimes}). */
  revocations: number;
  /** admin_audit rows past ADMIN_AUDIT_RETENTION. */
  auditRows: number;
  /**
   * Password logins never finished within AS_PASSWORD_LOGIN_TIMEOUT: a client that finds the
   * password wrong sends no finish, so these are the failed (or abandoned) attempts.
   */
  unfinishedPasswordLogins: number;
  /** Add-client grants not used within AS_PASSWORD_GRANT_LIFETIME. */
  addClientGrants: number;
}

/** The lifetimes one expiry run applies (ms). */
export interface ExpiryLifetimes {
  /** AS_CLIENT_INACTIVITY_LIMIT. */
  clientInactivityMs: number;
  /**
   * The longest a credential the AS signs stays valid (the larger of AS_INTERMEDIATE_LIFETIME and
   * AS_CLIENT_CREDENTIAL_MAX_LIFETIME). A revocation is kept this long after its month ends: a
   * credential revoked then was issued before, so it has expired by that time.
   */
  credentialMaxLifetimeMs: number;
  /** ADMIN_AUDIT_RETENTION. */
  auditRetentionMs: number;
}

/** Revocation times are kept as the UTC month start; a month's revocations all lie before its end. */
const MONTH_MS = 31 * 24 * 3600_000;

/**
 * One run of the expiry job: expired handles (with their queues and packages), connection
 * packages past their lifetime, queued connection offers past their expiry, clients inactive for
 * longer than `clientInactivityMs` or whose credential expired (and users left without clients),
 * AS intermediates past their notAfter, request ids past their replay window, revocations older than
 * any credential they could concern, audit rows past their retention, and password logins and
 * add-client grants past their expiry, all at `now` (ms).
 * Idempotent, so replicas may run it concurrently.
 */
export async function runExpiry(
  db: Database,
  now: number,
  lifetimes: ExpiryLifetimes,
): Promise<ExpiryReport> {
  return transaction(db, async (tx) => {
    const handles = await deleteExpiredHandles(tx, now);
    const connectionPackages = await deleteExpiredPackages(tx, now);
    const queuedOffers = await deleteExpiredOffers(tx, now);
    const inactive = await deleteInactiveClients(tx, now - lifetimes.clientInactivityMs);
    const expired = await deleteExpiredCredentialClients(tx, now);
    const intermediates = await deleteExpiredIntermediates(tx, new Date(now));
    const requestIds = await sweepSeenRequests(tx, new Date(now));
    const revocations = await deleteRevocationsBefore(
      tx,
      new Date(now - lifetimes.credentialMaxLifetimeMs - MONTH_MS),
    );
    const auditRows = await deleteAdminAuditBefore(tx, new Date(now - lifetimes.auditRetentionMs));
    const unfinishedPasswordLogins = await deleteExpiredLogins(tx, new Date(now));
    const addClientGrants = await deleteExpiredGrants(tx, new Date(now));
    return {
      handles,
      connectionPackages,
      queuedOffers,
      clients: inactive.clients,
      expiredCredentials: expired.clients,
      users: inactive.users + expired.users,
      intermediates,
      requestIds,
      revocations,
      auditRows,
      unfinishedPasswordLogins,
      addClientGrants,
    };
  });
}

/** Runs `runExpiry` every `intervalMs` until stopped: the AS's worker "expiry job". */
export class ExpiryJob implements Worker {
  readonly name = "expiry job";
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly options: {
      db: Database;
      intervalMs: number;
      lifetimes: ExpiryLifetimes;
      /** Clock in ms since the epoch. */
      now: () => number;
      log: Logger;
    },
  ) {}

  /** Starts the periodic runs (the first after one interval). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.runOnce().finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** One run now; errors are logged, never thrown (the next run retries). */
  async runOnce(): Promise<ExpiryReport | undefined> {
    try {
      const report = await runExpiry(this.options.db, this.options.now(), this.options.lifetimes);
      this.options.log.info({ expired: report }, "expiry job");
      return report;
    } catch (error) {
      this.options.log.error({ err: error }, "expiry job failed");
      return undefined;
    }
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
