import type { LoadBalancer } from '../balancer/load-balancer.js';
import type { EndpointsCache } from '../model/endpoints-cache.js';
import type { DialVia } from './dial-via.js';
import type { PortOpener } from './port-opener.js';
import type { ThisNode } from './this-node.js';

/** What ServicePorts works with: the opener of listeners, the balancer, the endpoints and this node. */
export interface ServicePortsOptions {
  readonly opener: PortOpener;
  readonly balancer: LoadBalancer;
  readonly endpoints: EndpointsCache;
  readonly node: ThisNode;
  readonly dialVia: DialVia | undefined;
  /** Rules modes: listeners at proxy ports; otherwise on the portals. */
  readonly redirect: boolean;
  readonly affinityNeedsNewListener: boolean;
  readonly isThisNode: (nodeName: string) => boolean;
}
