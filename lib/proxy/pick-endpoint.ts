import type { LoadBalancer } from '../balancer/load-balancer.js';
import type { Endpoint } from '../model/endpoint.js';
import type { ProxySocketKey } from '../model/service-port-name.js';
import type { EndpointBackoff } from './endpoint-backoff.js';

/**
 * Asks the balancer for an endpoint for a new TCP connection or UDP session, preferring one that
 * is not backed off. reset=true bypasses ClientIP affinity and re-pins the client (the legacy fix
 * for kubernetes#24648), which is what we want after a failure.
 *
 * When the pick is backed off and the port has other endpoints, the balancer is asked again with
 * reset=true, at most once per endpoint: round robin then visits each of them once. When every
 * endpoint is backed off the last pick is returned anyway: a back-off is a guess, and trying a
 * possibly recovered endpoint beats refusing the client. The last one (not the first) so that the
 * client's affinity pin names the endpoint actually used.
 */
export function pickEndpoint(balancer: LoadBalancer, backoff: EndpointBackoff, spn: ProxySocketKey, clientIP: string, reset: boolean): Endpoint | undefined {
  let ep = balancer.nextEndpoint(spn, clientIP, reset);
  if (ep === undefined || !backoff.isBackedOff(ep.key)) return ep;
  const n = balancer.endpoints(spn).length;
  if (n < 2) return ep;
  // The keys tried so far: a scheduler whose pick is a function of the client (sh, mh) or of the
  // load (lc) would otherwise answer the same endpoint again.
  const tried = new Set<string>([ep.key]);
  for (let i = 0; i < n; i++) {
    const next = balancer.nextEndpoint(spn, clientIP, true, tried);
    if (next === undefined) return ep;
    ep = next;
    if (!backoff.isBackedOff(ep.key)) return ep;
    tried.add(ep.key);
  }
  return ep;
}
