import type { ListenAddress } from '../proxy/proxy-socket.js';
import type { ServicePortSpec } from '../model/service.js';
import type { LocalAddresses } from './local-addresses.js';

/**
 * Where a service port listens in `--redirect none` mode: on each of its portal addresses
 * (ClusterIPs, externalIPs, LoadBalancer ingress IPs) that this machine has, at the service port;
 * when it has none of them, on --bind-address at the service port. Binding both a portal address
 * and the any-address on one port would conflict, hence "portals first, else bind address".
 */
export function directListenAddresses(portalIPs: readonly string[], port: ServicePortSpec, bindAddress: string | Omit<ListenAddress, 'port'>, local: LocalAddresses): ListenAddress[] {
  // Started as a literal of one: the port keeps this array, and one grown by push() from [] has
  // room for 17 addresses, 150 bytes where most ports have one address.
  let out: ListenAddress[] | undefined;
  for (let i = 0; i < portalIPs.length; i++) {
    const ip = portalIPs[i]!;
    // A repeat is looked for among the few addresses before it: no Set for each port.
    if (portalIPs.indexOf(ip) !== i || !local.has(ip)) continue;
    if (out === undefined) out = [{ host: ip, port: port.port }];
    else out.push({ host: ip, port: port.port });
  }
  return out ?? [typeof bindAddress === 'string' ? { host: bindAddress, port: port.port } : { ...bindAddress, port: port.port }];
}
