import type { SchedulerName } from './scheduler-annotation.js';
import type { ServiceKey } from './service-port-name.js';
import { serviceKey } from './service-port-name.js';
import type { ProxyProtocolSetting, ProxyProtocolVersion } from './proxy-protocol-annotation.js';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type AffinityType = 'None' | 'ClientIP';
export type TrafficPolicy = 'Cluster' | 'Local';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';

/** Default ClientIP affinity timeout, as Kubernetes' DefaultClientIPServiceAffinitySeconds (3 h). */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;

export interface ServicePortSpec {
  /** Port name; '' for a single unnamed port. */
  readonly name: string;
  readonly protocol: Protocol;
  /** The service port: what clients connect to on the portal. */
  readonly port: number;
  /** The port on the endpoints, by number or by the name of an endpoint port. */
  readonly targetPort: number | string;
  /** 0 when the service has no node port for this port. */
  readonly nodePort: number;
}

/**
 * A validated, normalised v1 Service: only the fields the proxy uses, with defaults applied.
 * Two specs are equal (deep) exactly when the proxy would treat them the same.
 */
export interface ServiceSpec {
  readonly namespace: string;
  readonly name: string;
  readonly type: ServiceType;
  /** `spec.clusterIPs` (or `[spec.clusterIP]`); empty for headless services and ExternalName. */
  readonly clusterIPs: readonly string[];
  /** true for `clusterIP: None`. */
  readonly headless: boolean;
  readonly externalIPs: readonly string[];
  /** `status.loadBalancer.ingress[].ip`. */
  readonly loadBalancerIPs: readonly string[];
  readonly ports: readonly ServicePortSpec[];
  readonly sessionAffinity: AffinityType;
  /** Seconds; DEFAULT_AFFINITY_TIMEOUT_SECONDS when not given. */
  readonly affinityTimeoutSeconds: number;
  readonly internalTrafficPolicy: TrafficPolicy;
  readonly externalTrafficPolicy: TrafficPolicy;
  /** `spec.healthCheckNodePort`: where load balancers ask whether this node has local endpoints; 0 when unset. */
  readonly healthCheckNodePort: number;
  /**
   * `spec.trafficDistribution` ('' when unset): PreferClose, PreferSameZone or PreferSameNode. As
   * in kube-proxy, routing follows the EndpointSlice hints the control plane derives from it, not
   * the field itself (see lib/model/topology.ts); it is kept for status views.
   */
  readonly trafficDistribution: string;
  readonly labels: Readonly<Record<string, string>>;
  /** `spec.externalName` without a trailing dot, lowercased: the CNAME target of an ExternalName service; '' for other types. */
  readonly externalName: string;
  /**
   * `spec.publishNotReadyAddresses` (or the older annotation `service.alpha.kubernetes.io/tolerate-unready-endpoints: "true"`):
   * DNS publishes every endpoint, ready or not.
   */
  readonly publishNotReadyAddresses: boolean;
  /**
   * The `kube-userspace-proxy.io/tcp-idle-timeout` annotation (ms, 0 = never): overrides
   * --tcp-idle-timeout for this Service's TCP ports; undefined when not annotated.
   */
  readonly tcpIdleTimeoutMs?: number | undefined;
  /** The `kube-userspace-proxy.io/scheduler` annotation; undefined (rr) when not annotated. */
  readonly scheduler?: SchedulerName | undefined;
  /**
   * The `kube-userspace-proxy.io/weights` annotation: weight by endpoint IP address or Pod name
   * (others weigh 1); undefined when not annotated.
   */
  readonly weights?: Readonly<Record<string, number>> | undefined;
  /**
   * The `kube-userspace-proxy.io/proxy-protocol` annotation (and `-ports`): the PROXY protocol
   * version sent to endpoints, and the TCP ports it is sent on; undefined when not annotated.
   */
  readonly proxyProtocol?: ProxyProtocolSetting | undefined;
  /** The `kube-userspace-proxy.io/max-connection-age` annotation (ms, 0 = never); undefined when not annotated. */
  readonly maxConnectionAgeMs?: number | undefined;
}

/** The PROXY protocol version the Service asks for on one of its ports; undefined = none. */
export function proxyProtocolOf(svc: Pick<ServiceSpec, 'proxyProtocol'>, port: Pick<ServicePortSpec, 'name' | 'protocol'>): ProxyProtocolVersion | undefined {
  const pp = svc.proxyProtocol;
  return pp !== undefined && port.protocol === 'TCP' && pp.ports.includes(port.name) ? pp.version : undefined;
}

export function keyOfService(svc: ServiceSpec): ServiceKey {
  return serviceKey(svc.namespace, svc.name);
}

/** LoadBalancer with externalTrafficPolicy Local: the API server gives it a healthCheckNodePort (its NeedsHealthCheck). */
export function needsHealthCheck(svc: Pick<ServiceSpec, 'type' | 'externalTrafficPolicy'>): boolean {
  return svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local';
}

/** Headless and ExternalName services are not proxied (kube-proxy's ShouldSkipService). */
export function isProxied(svc: ServiceSpec): boolean {
  return !svc.headless && svc.type !== 'ExternalName' && svc.clusterIPs.length > 0;
}
