import { type BusTopology, busTopology } from "./layout.js";

/**
 * Per-service NATS permissions derived from the bus layout (`layout.ts`): each service may
 * publish and subscribe only what it needs, so a compromised or buggy service cannot inject
 * fan-outs, forge federation traffic or read another service's deliveries. `deploy/nats.conf`,
 * the Helm chart and the tests use `natsAuthorization()` (a test checks the shipped copies).
 */

/** The services that connect to NATS (the edge gateway does not). */
export const NATS_SERVICES = ["auth", "delivery", "queue", "federation-gateway"] as const;
export type NatsService = (typeof NATS_SERVICES)[number];

export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
}

/** Replies to requests (JetStream API answers, pull deliveries) come to the client's inbox. */
const INBOX = "_INBOX.>";
/** The JetStream account check every client does when it connects, and stream lookup by subject. */
const JS_COMMON = ["$JS.API.INFO", "$JS.API.STREAM.NAMES"];

/**
 * A stream the service ensures: create/update it, and — for the one-time move of a stream of an
 * earlier version (limits retention) — read, delete and republish its unhandled messages.
 */
function ensures(stream: string, subjects: string[]): string[] {
  return [
    ...["INFO", "CREATE", "UPDATE", "DELETE", "MSG.GET"].map((op) => `$JS.API.STREAM.${op}.${stream}`),
    `$JS.API.CONSUMER.LIST.${stream}`,
    ...subjects,
  ];
}

/** A durable the service consumes (or declares: creating needs the same API). */
function consumes(stream: string, durable: string): string[] {
  return [
    `$JS.API.CONSUMER.INFO.${stream}.${durable}`,
    `$JS.API.CONSUMER.CREATE.${stream}.${durable}`,
    `$JS.API.CONSUMER.CREATE.${stream}.${durable}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.${durable}`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.${durable}`,
    `$JS.ACK.${stream}.${durable}.>`,
  ];
}

/** What each service may publish and subscribe to, on the bus of `topology` (default: a deployment's). */
export function natsPermissions(topology: BusTopology = busTopology()): Record<NatsService, NatsPermissions> {
  const { fanOut, queueDeleted, federation } = topology.streams;
  const { queueFanOut, deliveryQueueDeleted, outboundScout } = topology.durables;
  const fanOutSubject = topology.subjects.fanOut;
  const queueDeletedSubject = topology.subjects.queueDeleted;
  const outboundSubjects = topology.subjects.federationOutboundPattern;
  const queueActivity = `${topology.subjects.queueActivityRoot}>`;
  const connectionQueueActivity = `${topology.subjects.connectionQueueActivityRoot}>`;
  return {
    auth: {
      publish: [...JS_COMMON, connectionQueueActivity],
      subscribe: [INBOX, connectionQueueActivity],
    },
    delivery: {
      publish: [
        ...JS_COMMON,
        ...ensures(fanOut, [fanOutSubject]),
        ...ensures(queueDeleted, [queueDeletedSubject]),
        ...consumes(queueDeleted, deliveryQueueDeleted),
      ],
      subscribe: [INBOX],
    },
    queue: {
      publish: [
        ...JS_COMMON,
        ...ensures(fanOut, [fanOutSubject]),
        ...ensures(queueDeleted, [queueDeletedSubject]),
        ...ensures(federation, [outboundSubjects]),
        ...consumes(fanOut, queueFanOut),
        // A new fan-out leader recreates the durable the last one left messages unacked in (resetDurable).
        `$JS.API.CONSUMER.DELETE.${fanOut}.${queueFanOut}`,
        // Declared with the outbound stream (interest retention), consumed by the gateway.
        `$JS.API.CONSUMER.INFO.${federation}.${outboundScout}`,
        `$JS.API.CONSUMER.CREATE.${federation}.${outboundScout}`,
        `$JS.API.CONSUMER.DURABLE.CREATE.${federation}.${outboundScout}`,
        queueActivity,
      ],
      subscribe: [INBOX, queueActivity],
    },
    "federation-gateway": {
      publish: [
        ...JS_COMMON,
        ...ensures(fanOut, [fanOutSubject]),
        ...ensures(queueDeleted, [queueDeletedSubject]),
        ...ensures(federation, [outboundSubjects]),
        // The scout and one lane per peer domain (durable names derive from the domain).
        ...consumes(federation, "*"),
      ],
      subscribe: [INBOX],
    },
  };
}

/** One NATS user: `password` is a literal, or `$VAR` for an environment variable of the server. */
export interface NatsUser {
  service: NatsService;
  user: string;
  password: string;
}

/**
 * The `authorization { users = [...] }` block of a nats-server config giving each user the
 * permissions of its service.
 */
export function natsAuthorization(users: NatsUser[], topology: BusTopology = busTopology()): string {
  const permissions = natsPermissions(topology);
  const value = (text: string): string => (/^\$[A-Z_][A-Z0-9_]*$/.test(text) ? text : JSON.stringify(text));
  const list = (subjects: string[]): string =>
    subjects.map((s) => `          ${JSON.stringify(s)}`).join("\n");
  const entries = users.map((u) => {
    const perm = permissions[u.service];
    return [
      `    {`,
      `      user: ${value(u.user)}`,
      `      password: ${value(u.password)}`,
      `      permissions: {`,
      `        publish: { allow: [`,
      list(perm.publish),
      `        ] }`,
      `        subscribe: { allow: [`,
      list(perm.subscribe),
      `        ] }`,
      `      }`,
      `    }`,
    ].join("\n");
  });
  return `authorization {\n  users = [\n${entries.join("\n")}\n  ]\n}\n`;
}

/**
 * The users of a deployment: name and password from the server's environment,
 * `$NATS_<SERVICE>_USER` / `$NATS_<SERVICE>_PASSWORD` (SERVICE: AUTH, DELIVERY, QUEUE,
 * FEDERATION_GATEWAY), the same values the service gets as NATS_USER / NATS_PASSWORD.
 */
export function deploymentNatsUsers(): NatsUser[] {
  return NATS_SERVICES.map((service) => {
    const key = `NATS_${service.toUpperCase().replaceAll("-", "_")}`;
    return { service, user: `$${key}_USER`, password: `$${key}_PASSWORD` };
  });
}
