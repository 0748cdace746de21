import type { AffinityPolicy, LoadBalancer } from '../balancer/load-balancer.js';
import { formatHostPort } from '../net/host-port.js';
import { DEFAULT_SCHEDULER } from '../model/scheduler-annotation.js';
import type { SchedulerName } from '../model/scheduler-annotation.js';
import type { ProxySocketKey } from '../model/service-port-name.js';
import type { ListenAddress } from '../proxy/proxy-socket.js';
import type { ProxyStats } from '../proxy/proxy-stats.js';
import { portalsOf } from './portal-plan.js';
import type { ProxiedPort } from './proxied-port.js';
import { affinityOf } from './service-port-policies.js';

/** What the agent does for one proxy socket of a service port, for status views and tests. */
export interface PortStatus {
  /** The socket's key: the ServicePortName, with the split when the port has several sockets. */
  readonly spn: ProxySocketKey;
  readonly protocol: string;
  /** Bound listeners (empty while the port failed to open). */
  readonly listening: readonly ListenAddress[];
  readonly endpoints: readonly string[];
  /** Portals captured by rules (rules modes) or served directly (none mode). */
  readonly portals: readonly string[];
  readonly nodePort: number;
  /** The local listener port the rules send portals to (rules modes); 0 in none mode. */
  readonly proxyPort: number;
  readonly scheduler: SchedulerName;
  readonly affinity: AffinityPolicy;
  /** Why the listener (or the node port) is not open, if it is not. */
  readonly error: string | undefined;
  readonly stats: ProxyStats | undefined;
}

/** The part of PortStatus that the per-port metrics read: cheap to take for every port at each scrape. */
export type PortCounters = Pick<PortStatus, 'spn' | 'protocol' | 'scheduler' | 'stats'>;

/**
 * The listeners of one proxy socket, for the endpoint filter: the ports it may listen on (its
 * service port, node port and proxy port) are plain fields, and the addresses, which ask the
 * kernel, are read only when asked for.
 */
export interface PortListeners extends Pick<PortStatus, 'listening' | 'proxyPort'> {
  readonly ports: readonly number[];
}

export function portListenersOf(st: ProxiedPort): PortListeners {
  return new ListenersOf(st);
}

/** A class, not an object literal with a getter: thousands are made at a time, and this keeps them on one fast shape. */
class ListenersOf implements PortListeners {
  readonly #st: ProxiedPort;
  readonly ports: readonly number[];
  readonly proxyPort: number;

  constructor(st: ProxiedPort) {
    this.#st = st;
    this.ports = [st.port.port, st.port.nodePort, st.proxyPort];
    this.proxyPort = st.proxyPort;
  }

  get listening(): readonly ListenAddress[] {
    return this.#st.socket?.addresses() ?? [];
  }
}

export function portCountersOf(st: ProxiedPort): PortCounters {
  return { spn: st.key, protocol: st.port.protocol, scheduler: st.service.scheduler ?? DEFAULT_SCHEDULER, stats: st.socket?.stats };
}

export function portStatusOf(st: ProxiedPort, balancer: LoadBalancer): PortStatus {
  return {
    spn: st.key,
    protocol: st.port.protocol,
    listening: st.socket?.addresses() ?? [],
    endpoints: balancer.endpoints(st.key).map((e) => e.key),
    portals: portalsOf(st.service, st.port, st.scope, st.family).map((p) => formatHostPort(p.ip, p.port)),
    nodePort: st.port.nodePort,
    proxyPort: st.proxyPort,
    scheduler: st.service.scheduler ?? DEFAULT_SCHEDULER,
    affinity: affinityOf(st.service),
    error: st.error?.message ?? st.claimError?.message,
    stats: st.socket?.stats,
  };
}
