import type { ServiceSpec } from '../../lib/model/service.js';

/**
 * A ServiceSpec as the model holds one: a ClusterIP Service default/web at 10.96.0.10 with no
 * ports and every policy at Kubernetes' default, changed by `overrides`.
 */
export function serviceSpec(overrides: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    namespace: 'default',
    name: 'web',
    type: 'ClusterIP',
    clusterIPs: ['10.96.0.10'],
    headless: false,
    externalIPs: [],
    loadBalancerIPs: [],
    ports: [],
    sessionAffinity: 'None',
    affinityTimeoutSeconds: 10800,
    internalTrafficPolicy: 'Cluster',
    externalTrafficPolicy: 'Cluster',
    healthCheckNodePort: 0,
    trafficDistribution: '',
    externalName: '',
    publishNotReadyAddresses: false,
    labels: {},
    ...overrides,
  };
}
