// A round-robin TCP balancer on one loopback port in front of several replicas of a service, as a
// Kubernetes Service is: callers keep one address, each new connection goes to the next replica
// the test reports live. It balances connections, not calls: a gRPC channel stays on the replica
// it reached until that connection breaks (a killed replica), then reconnects to a live one.
import { startTcpProxy, type TcpProxy, type TcpTarget } from "./tcp-proxy.js";

/** A balancer: `proxy.port` is the service's address; `setLive` says which replicas take connections. */
export interface TcpBalancer {
  readonly proxy: TcpProxy;
  readonly port: number;
  /** Marks replica `index` live or not (a replica being killed is marked down first). */
  setLive(index: number, live: boolean): void;
  close(): Promise<void>;
}

/** Starts a balancer on a free loopback port over `replicas` (all live at first). */
export async function startTcpBalancer(replicas: readonly TcpTarget[]): Promise<TcpBalancer> {
  const live = replicas.map(() => true);
  let next = 0;
  const choose = (): TcpTarget | undefined => {
    for (let tried = 0; tried < replicas.length; tried++) {
      const index = next;
      next = (next + 1) % replicas.length;
      if (live[index]) return replicas[index];
    }
    return undefined;
  };
  const proxy = await startTcpProxy(choose);
  return {
    proxy,
    port: proxy.port,
    setLive(index, isLive) {
      live[index] = isLive;
    },
    close: () => proxy.close(),
  };
}
