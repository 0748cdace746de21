import type { Protocol } from './service.js';
import type { ServiceKey } from './service-port-name.js';
import { serviceKey } from './service-port-name.js';

export interface EndpointPortSpec {
  /** '' for an unnamed port. */
  readonly name: string;
  readonly protocol: Protocol;
  readonly port: number;
}

export interface EndpointSpec {
  readonly addresses: readonly string[];
  /** conditions.ready; an unset condition counts as ready. */
  readonly ready: boolean;
  /** conditions.serving; unset means "same as ready". */
  readonly serving: boolean;
  /** conditions.terminating; unset means false. */
  readonly terminating: boolean;
  readonly nodeName: string;
  /** `hostname` (a DNS label, as StatefulSet pods get), for DNS records of headless services; '' when absent. */
  readonly hostname: string;
  /** The endpoint's `zone` ('' when unset). */
  readonly zone: string;
  /**
   * Where the control plane wants this endpoint used (`hints.forZones[].name`,
   * `hints.forNodes[].name`); undefined when the endpoint carries no hint at all.
   */
  readonly hints: EndpointHints | undefined;
  /** The object backing this endpoint (`targetRef`), usually its Pod; undefined when unset. */
  readonly targetRef?: TargetRef | undefined;
}

/** `targetRef` of an endpoint: what --dial-via port-forward forwards to, when its kind is Pod. */
export interface TargetRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export interface EndpointHints {
  readonly forZones: readonly string[];
  readonly forNodes: readonly string[];
}

/**
 * A validated, normalised `discovery.k8s.io/v1` EndpointSlice. A v1 `Endpoints` object is
 * converted into one of these per subset, so the rest of the proxy knows only slices.
 */
export interface EndpointSliceSpec {
  readonly namespace: string;
  /** Unique within the namespace: the slice name, or `<endpoints-name>/subset-<i>` for v1 Endpoints. */
  readonly name: string;
  /** The Service it belongs to (label `kubernetes.io/service-name`, or the Endpoints name). */
  readonly serviceName: string;
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  /** undefined when the slice declares no ports at all (then the service's numeric targetPort is used). */
  readonly ports: readonly EndpointPortSpec[] | undefined;
  readonly endpoints: readonly EndpointSpec[];
  /**
   * The `endpoints.kubernetes.io/last-change-trigger-time` annotation (ms since the epoch), for
   * kube-proxy's network programming latency; absent or undefined when not set.
   */
  readonly triggerTimeMs?: number | undefined;
}

export function serviceKeyOfSlice(slice: EndpointSliceSpec): ServiceKey {
  return serviceKey(slice.namespace, slice.serviceName);
}

/** `namespace/name`, joined as a Service's key is (one flat string, see servicePortName). */
export function keyOfSlice(slice: EndpointSliceSpec): string {
  return serviceKey(slice.namespace, slice.name);
}
