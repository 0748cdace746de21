import type { ProxyProtocolVersion } from '../../model/proxy-protocol-annotation.js';

/** Where the PROXY protocol header says the client connected to. */
export interface Portal {
  readonly host: string;
  readonly port: number;
}

/** What a Service asks of the TCP connections of one of its ports (its annotations). */
export interface TcpConnectionPolicy {
  /** Send this PROXY protocol header to the endpoint before the client's bytes; undefined = none. */
  readonly proxyProtocol?: ProxyProtocolVersion | undefined;
  /**
   * The destinations the header may name: the one of the client's family. In the redirect modes
   * the listener is on a proxy port and the kernel's original destination (SO_ORIGINAL_DST) is out
   * of Node's reach, so the agent gives the Service's cluster IPs and port; none of the client's
   * family = the address the connection was accepted on (right when the listener is on the portal
   * itself, --redirect none).
   */
  readonly portals?: readonly Portal[] | undefined;
  /** Close connections this old (with jitter, see IdleSweep); 0 or undefined = never. */
  readonly maxConnectionAgeMs?: number | undefined;
}

export function samePolicy(a: TcpConnectionPolicy, b: TcpConnectionPolicy): boolean {
  return (
    a.proxyProtocol === b.proxyProtocol &&
    (a.maxConnectionAgeMs ?? 0) === (b.maxConnectionAgeMs ?? 0) &&
    (a.portals ?? []).length === (b.portals ?? []).length &&
    (a.portals ?? []).every((p, i) => p.host === b.portals?.[i]?.host && p.port === b.portals?.[i]?.port)
  );
}
