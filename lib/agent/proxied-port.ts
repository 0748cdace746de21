import { logger } from '../log.js';
import type { IPFamily } from '../model/ip-address.js';
import type { ServicePortSpec, ServiceSpec } from '../model/service.js';
import { servicePortName } from '../model/service-port-name.js';
import type { ProxySocketKey, ServicePortName } from '../model/service-port-name.js';
import type { ListenAddress, ProxySocket } from '../proxy/proxy-socket.js';
import type { DialVia } from './dial-via.js';
import type { NodePortClaim } from './node-port-claim.js';
import { directPlan, groupKey, groupsOf, redirectPlan } from './portal-plan.js';
import type { PlanContext, PortalScope } from './portal-plan.js';

const log = logger('agent');

/** One proxy socket a Service asks for: where it listens, and what, when changed, needs a new one. */
export interface WantedPort {
  /** The service port this socket serves (several sockets share it when the port is split). */
  readonly spn: ServicePortName;
  readonly scope: PortalScope;
  /** The one family of a dual-stack service port's socket; undefined: every family. */
  readonly family: IPFamily | undefined;
  readonly port: ServicePortSpec;
  readonly listen: readonly ListenAddress[];
  /** Everything that, when changed, needs a new listener. */
  readonly signature: string;
}

/** What the agent keeps for one proxy socket of a service port: kube-proxy's serviceInfo. */
export interface ProxiedPort extends WantedPort {
  /** The key of this socket in the agent, the balancer, status and metrics. */
  readonly key: ProxySocketKey;
  service: ServiceSpec;
  port: ServicePortSpec;
  socket: ProxySocket | undefined;
  error: Error | undefined;
  /** Rules modes: the allocated proxy port (0 until opened) and the held node port. */
  proxyPort: number;
  claim: NodePortClaim | undefined;
  claimError: Error | undefined;
  /** The endpoint keys last given to the balancer, joined: skips no-op updates. */
  endpointsKey: string;
}

export interface WantedPortsOptions {
  /** Rules modes: one listener at a proxy port per socket; otherwise listeners bind the portals. */
  readonly redirect: boolean;
  readonly dialVia: DialVia | undefined;
  /** The socket factory decides by affinity which processes serve a port: affinity is in the signature. */
  readonly affinityNeedsNewListener: boolean;
}

/**
 * The proxy sockets a proxied Service asks for, by key: every TCP and UDP port (others are skipped
 * with a warning) times its portal groups (scope and, dual-stack, family).
 */
export function wantedPorts(service: ServiceSpec, ctx: PlanContext, options: WantedPortsOptions): Map<ProxySocketKey, WantedPort> {
  const wanted = new Map<ProxySocketKey, WantedPort>();
  for (const port of service.ports) {
    const spn = servicePortName(service.namespace, service.name, port.name);
    if (port.protocol !== 'TCP' && port.protocol !== 'UDP') {
      log.warn('skipped service port: protocol not supported', { service: spn, protocol: port.protocol });
      continue;
    }
    if (options.dialVia && !options.dialVia.servesPort(spn, port.protocol)) continue;
    for (const group of groupsOf(service, port)) {
      const plan = options.redirect ? redirectPlan(service, port, ctx, group) : directPlan(service, port, ctx, group);
      const signature = options.affinityNeedsNewListener ? [plan.signature, '|affinity=', service.sessionAffinity].join('') : plan.signature;
      wanted.set(groupKey(spn, group), { spn, scope: group.scope, family: group.family, port, listen: plan.listen, signature });
    }
  }
  return wanted;
}

/** A wanted socket before it is opened. */
export function newProxiedPort(key: ProxySocketKey, want: WantedPort, service: ServiceSpec): ProxiedPort {
  // Spelled out: copying `want` with a spread cost about 15 µs per port, 8% of a first sync.
  return {
    spn: want.spn,
    scope: want.scope,
    family: want.family,
    port: want.port,
    listen: want.listen,
    signature: want.signature,
    key,
    service,
    socket: undefined,
    error: undefined,
    proxyPort: 0,
    claim: undefined,
    claimError: undefined,
    endpointsKey: '',
  };
}
