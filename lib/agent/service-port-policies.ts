import { DEFAULT_SCHEDULING } from '../balancer/load-balancer.js';
import type { AffinityPolicy, SchedulingPolicy } from '../balancer/load-balancer.js';
import { DEFAULT_SCHEDULER } from '../model/scheduler-annotation.js';
import { proxyProtocolOf } from '../model/service.js';
import type { ServicePortSpec, ServiceSpec } from '../model/service.js';
import type { TcpConnectionPolicy } from '../proxy/tcp/connection-policy.js';

/** The Service's session affinity as the balancer takes it. */
export function affinityOf(service: ServiceSpec): AffinityPolicy {
  return { type: service.sessionAffinity, timeoutSeconds: service.affinityTimeoutSeconds };
}

/** The service's scheduling annotations as the balancer takes them; one object per spec, so unchanged specs compare equal. */
const schedulingBySpec = new WeakMap<ServiceSpec, SchedulingPolicy>();
export function schedulingOf(service: ServiceSpec): SchedulingPolicy {
  // Every Service without scheduling annotations shares one: no WeakMap entry for each of 10,000.
  if (service.scheduler === undefined && service.weights === undefined) return DEFAULT_SCHEDULING;
  let p = schedulingBySpec.get(service);
  if (p === undefined) {
    p = { scheduler: service.scheduler ?? DEFAULT_SCHEDULER, weights: service.weights ?? {} };
    schedulingBySpec.set(service, p);
  }
  return p;
}

/**
 * The Service's annotations for a TCP port's connections. The PROXY header names the cluster
 * IP and port as the destination in the redirect modes: the kernel's original destination
 * (SO_ORIGINAL_DST) is out of Node's reach, and a proxy port stands for every portal of the port.
 */
const NO_POLICY: TcpConnectionPolicy = Object.freeze({});

export function tcpPolicyOf(service: ServiceSpec, port: ServicePortSpec, redirect: boolean): TcpConnectionPolicy {
  const proxyProtocol = proxyProtocolOf(service, port);
  const maxConnectionAgeMs = service.maxConnectionAgeMs ?? 0;
  // Most Services ask nothing: one frozen policy for all of them, which the socket keeps as it is.
  if (proxyProtocol === undefined && maxConnectionAgeMs <= 0) return NO_POLICY;
  const portals = proxyProtocol !== undefined && redirect ? service.clusterIPs.map((host) => ({ host, port: port.port })) : undefined;
  return { ...(proxyProtocol !== undefined ? { proxyProtocol } : {}), ...(portals ? { portals } : {}), ...(maxConnectionAgeMs > 0 ? { maxConnectionAgeMs } : {}) };
}

/** The Service's annotation, else --tcp-idle-timeout (0 = never). */
export function tcpIdleTimeoutOf(service: ServiceSpec, flagMs: number | undefined): number {
  return service.tcpIdleTimeoutMs ?? flagMs ?? 0;
}
