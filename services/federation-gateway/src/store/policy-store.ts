// The federation policy an operator set at runtime (admin SetFederationPolicy), kept in the
// gateway database's admin_settings as JSON; every replica reloads it (FEDERATION_POLICY_REFRESH).
import { isHomeserverDomain } from "@phoenix/runtime/config";
import { type Database, getAdminSetting, putAdminSetting } from "@phoenix/runtime/db";
import type { PolicyConfig } from "../domain/policy.js";

/** The name of the runtime setting in `admin_settings`. */
export const POLICY_SETTING = "federation_policy";

/** The stored policy, or undefined when never set (or unreadable: the configured one applies). */
export async function loadStoredPolicy(db: Database): Promise<PolicyConfig | undefined> {
  const text = await getAdminSetting(db, POLICY_SETTING);
  return text === undefined ? undefined : parseStoredPolicy(text);
}

/** Parses a stored policy; undefined when it is not one (never written by this code). */
export function parseStoredPolicy(text: string): PolicyConfig | undefined {
  try {
    const value = JSON.parse(text) as Partial<PolicyConfig>;
    const domains = (list: unknown): list is string[] =>
      Array.isArray(list) && list.every((d) => typeof d === "string" && isHomeserverDomain(d));
    if (
      (value.mode !== "allowlist" && value.mode !== "open") ||
      !domains(value.allowed) ||
      !domains(value.denied)
    )
      return undefined;
    return { mode: value.mode, allowed: value.allowed, denied: value.denied };
  } catch {
    return undefined;
  }
}

/** Stores the policy (in the caller's transaction). */
export async function storePolicy(db: Database, policy: PolicyConfig): Promise<void> {
  await putAdminSetting(
    db,
    POLICY_SETTING,
    JSON.stringify({ mode: policy.mode, allowed: policy.allowed, denied: policy.denied }),
  );
}
