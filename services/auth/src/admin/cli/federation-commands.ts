// The federation gateway commands of `phoenix-admin` (FederationAdminService): peers and the
// federation policy.
import { federationAdmin } from "@phoenix/proto";
import { isHomeserverDomain } from "@phoenix/runtime/config";
import { AdminUsageError, type Command, need } from "./command.js";

const S = federationAdmin.FederationAdminServiceService;
const Mode = federationAdmin.FederationPolicyMode;
const MODES: Record<string, federationAdmin.FederationPolicyMode> = {
  allowlist: Mode.FEDERATION_POLICY_MODE_ALLOWLIST,
  open: Mode.FEDERATION_POLICY_MODE_OPEN,
};
const modeName = (mode: federationAdmin.FederationPolicyMode) =>
  Object.entries(MODES).find(([, m]) => m === mode)?.[0] ?? "unspecified";

/** A comma-separated domain list of a flag (empty: none); each domain checked like the gateway does. */
function domains(flag: string, value: string | boolean | undefined): string[] {
  if (typeof value !== "string" || value.trim() === "") return [];
  const list = value
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d !== "");
  for (const domain of list) {
    if (!isHomeserverDomain(domain))
      throw new AdminUsageError(`--${flag}: "${domain}" is not a lower-case fully qualified domain name`);
  }
  return list;
}

function policyJson(policy: federationAdmin.FederationPolicy | undefined) {
  return {
    mode: modeName(policy?.mode ?? Mode.FEDERATION_POLICY_MODE_UNSPECIFIED),
    allowed: policy?.allowedDomains ?? [],
    denied: policy?.deniedDomains ?? [],
  };
}

function policyLines(json: ReturnType<typeof policyJson>, origin: string): string[] {
  return [
    `mode: ${json.mode}${origin}`,
    `allowed: ${json.allowed.join(", ") || "(none)"}`,
    `denied: ${json.denied.join(", ") || "(none)"}`,
  ];
}

const minute = (at: Date | undefined) => (at ? at.toISOString().slice(0, 16).replace("T", " ") : "never");

/** The federation commands by name. */
export const federationCommands: Record<string, Command> = {
  "federation peers": {
    service: "federation",
    usage: "federation peers",
    summary: "peer domains: last contact in/out, outbound backlog, refusals, admitted now",
    async run({ federation, sign, print }) {
      const { peers } = await federation.listPeers(await sign(federationAdmin.ListPeersTbs, S.listPeers, {}));
      const rows = peers.map((p) => ({
        domain: p.domain,
        lastInboundAt: p.lastInboundAt?.toISOString(),
        lastOutboundAt: p.lastOutboundAt?.toISOString(),
        outboundBacklog: Number(p.outboundBacklog),
        inboundPolicyRefusals: Number(p.inboundPolicyRefusals),
        inboundSignatureRefusals: Number(p.inboundSignatureRefusals),
        outboundFailures: Number(p.outboundFailures),
        admitted: p.admitted,
      }));
      print(
        { peers: rows },
        peers.length === 0
          ? ["no peers yet"]
          : peers.map(
              (p, i) =>
                `${p.domain}  in=${minute(p.lastInboundAt)}  out=${minute(p.lastOutboundAt)}  backlog=${rows[i]?.outboundBacklog}  refused=${rows[i]?.inboundPolicyRefusals}/${rows[i]?.inboundSignatureRefusals}  failures=${rows[i]?.outboundFailures}  ${p.admitted ? "admitted" : "refused"}`,
            ),
      );
    },
  },
  "federation policy get": {
    service: "federation",
    usage: "federation policy get",
    summary: "show the federation policy (mode, allowed and denied domains)",
    async run({ federation, sign, print }) {
      const response = await federation.getFederationPolicy(
        await sign(federationAdmin.GetFederationPolicyTbs, S.getFederationPolicy, {}),
      );
      const json = { ...policyJson(response.policy), fromConfig: response.fromConfig };
      print(json, policyLines(json, response.fromConfig ? " (FEDERATION_POLICY)" : " (set at runtime)"));
    },
  },
  "federation policy set": {
    service: "federation",
    usage: "federation policy set --mode allowlist|open [--allow D,…] [--deny D,…]",
    summary: "replace the federation policy at runtime (every gateway replica follows within seconds)",
    options: {
      mode: { type: "string", description: "allowlist: only --allow domains; open: all but --deny" },
      allow: { type: "string", description: "allowed domains, comma-separated (replaces the list)" },
      deny: {
        type: "string",
        description: "denied domains, comma-separated (replaces the list; wins over --allow)",
      },
    },
    async run({ federation, sign, args, values, print }) {
      if (args.length > 0) throw new AdminUsageError(`unexpected argument "${args[0]}"`);
      const name = need(
        [typeof values.mode === "string" ? values.mode : ""],
        0,
        "--mode (allowlist or open)",
      );
      const mode = MODES[name];
      if (mode === undefined) throw new AdminUsageError(`unknown mode "${name}" (allowlist or open)`);
      const policy = {
        mode,
        allowedDomains: domains("allow", values.allow),
        deniedDomains: domains("deny", values.deny),
      };
      const response = await federation.setFederationPolicy(
        await sign(federationAdmin.SetFederationPolicyTbs, S.setFederationPolicy, { policy }),
      );
      const json = policyJson(response.policy);
      print(json, policyLines(json, " (set)"));
    },
  },
};
