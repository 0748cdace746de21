/**
 * The fields of the Kubernetes types a manifest may hold, as the API defines them (core/v1 and
 * discovery/v1 up to Kubernetes 1.34), so that a field this proxy does not know can be named in a
 * warning: the API server rejects unknown fields of what it is sent, but a manifest read from disk
 * has no such check, and a misspelt `protocl` would otherwise silently mean the default.
 *
 * A shape is `ANY` (a scalar, or a map with free keys such as labels), a mapping of its known
 * fields, or a one-element array holding the shape of each list item. Fields the proxy ignores
 * are listed too: a valid manifest of any of these kinds never draws a warning.
 */
export type Shape = typeof ANY | { readonly [field: string]: Shape } | readonly [Shape];

export const ANY = 'any';

const OWNER_REFERENCE: Shape = { apiVersion: ANY, kind: ANY, name: ANY, uid: ANY, controller: ANY, blockOwnerDeletion: ANY };
const MANAGED_FIELDS_ENTRY: Shape = { manager: ANY, operation: ANY, apiVersion: ANY, time: ANY, fieldsType: ANY, fieldsV1: ANY, subresource: ANY };

const OBJECT_META: Shape = {
  name: ANY,
  generateName: ANY,
  namespace: ANY,
  selfLink: ANY,
  uid: ANY,
  resourceVersion: ANY,
  generation: ANY,
  creationTimestamp: ANY,
  deletionTimestamp: ANY,
  deletionGracePeriodSeconds: ANY,
  labels: ANY,
  annotations: ANY,
  ownerReferences: [OWNER_REFERENCE],
  finalizers: ANY,
  managedFields: [MANAGED_FIELDS_ENTRY],
  // Removed from the API in 1.20 but still in manifests exported from older clusters.
  clusterName: ANY,
};

const OBJECT_REFERENCE: Shape = { kind: ANY, namespace: ANY, name: ANY, uid: ANY, apiVersion: ANY, resourceVersion: ANY, fieldPath: ANY };

const CONDITION: Shape = { type: ANY, status: ANY, observedGeneration: ANY, lastTransitionTime: ANY, reason: ANY, message: ANY };

/** The fields every object has beside its kind's own. */
function object(fields: Record<string, Shape>): Shape {
  return { apiVersion: ANY, kind: ANY, metadata: OBJECT_META, ...fields };
}

const SERVICE_PORT: Shape = { name: ANY, protocol: ANY, appProtocol: ANY, port: ANY, targetPort: ANY, nodePort: ANY };

/** core/v1 Service. */
export const SERVICE: Shape = object({
  spec: {
    ports: [SERVICE_PORT],
    selector: ANY,
    clusterIP: ANY,
    clusterIPs: ANY,
    type: ANY,
    externalIPs: ANY,
    sessionAffinity: ANY,
    loadBalancerIP: ANY,
    loadBalancerSourceRanges: ANY,
    externalName: ANY,
    externalTrafficPolicy: ANY,
    healthCheckNodePort: ANY,
    publishNotReadyAddresses: ANY,
    sessionAffinityConfig: { clientIP: { timeoutSeconds: ANY } },
    ipFamilies: ANY,
    ipFamilyPolicy: ANY,
    allocateLoadBalancerNodePorts: ANY,
    loadBalancerClass: ANY,
    internalTrafficPolicy: ANY,
    trafficDistribution: ANY,
    // Alpha from 1.17 to 1.21, then removed; older manifests may still carry it.
    topologyKeys: ANY,
  },
  status: {
    loadBalancer: { ingress: [{ ip: ANY, hostname: ANY, ipMode: ANY, ports: [{ port: ANY, protocol: ANY, error: ANY }] }] },
    conditions: [CONDITION],
  },
});

const ENDPOINT_PORT: Shape = { name: ANY, protocol: ANY, port: ANY, appProtocol: ANY };

/** discovery.k8s.io/v1 EndpointSlice. */
export const ENDPOINT_SLICE: Shape = object({
  addressType: ANY,
  endpoints: [
    {
      addresses: ANY,
      conditions: { ready: ANY, serving: ANY, terminating: ANY },
      hostname: ANY,
      targetRef: OBJECT_REFERENCE,
      deprecatedTopology: ANY,
      nodeName: ANY,
      zone: ANY,
      hints: { forZones: [{ name: ANY }], forNodes: [{ name: ANY }] },
    },
  ],
  ports: [ENDPOINT_PORT],
});

const ENDPOINT_ADDRESS: Shape = { ip: ANY, hostname: ANY, nodeName: ANY, targetRef: OBJECT_REFERENCE };

/** core/v1 Endpoints. */
export const ENDPOINTS: Shape = object({
  subsets: [{ addresses: [ENDPOINT_ADDRESS], notReadyAddresses: [ENDPOINT_ADDRESS], ports: [ENDPOINT_PORT] }],
});

/** core/v1 Node. */
export const NODE: Shape = object({
  spec: {
    podCIDR: ANY,
    podCIDRs: ANY,
    providerID: ANY,
    unschedulable: ANY,
    taints: [{ key: ANY, value: ANY, effect: ANY, timeAdded: ANY }],
    configSource: { configMap: { namespace: ANY, name: ANY, uid: ANY, resourceVersion: ANY, kubeletConfigKey: ANY } },
    externalID: ANY,
  },
  status: {
    capacity: ANY,
    allocatable: ANY,
    phase: ANY,
    conditions: [{ type: ANY, status: ANY, lastHeartbeatTime: ANY, lastTransitionTime: ANY, reason: ANY, message: ANY }],
    addresses: [{ type: ANY, address: ANY }],
    daemonEndpoints: { kubeletEndpoint: { Port: ANY } },
    nodeInfo: {
      machineID: ANY,
      systemUUID: ANY,
      bootID: ANY,
      kernelVersion: ANY,
      osImage: ANY,
      containerRuntimeVersion: ANY,
      kubeletVersion: ANY,
      kubeProxyVersion: ANY,
      operatingSystem: ANY,
      architecture: ANY,
      swap: ANY,
    },
    images: [{ names: ANY, sizeBytes: ANY }],
    volumesInUse: ANY,
    volumesAttached: [{ name: ANY, devicePath: ANY }],
    config: ANY,
    runtimeHandlers: [{ name: ANY, features: ANY }],
    features: ANY,
    declaredFeatures: ANY,
  },
});
