import ipaddr from 'ipaddr.js';
import type { EndpointSliceSpec, EndpointSpec } from '../model/endpoint-slice.js';

export interface RefusedAddress {
  readonly address: string;
  readonly reason: string;
}

type Range = readonly [ipaddr.IPv4 | ipaddr.IPv6, number, string];

/**
 * Addresses an endpoint from the API may not have. Anyone who can write an EndpointSlice (or a
 * selector-less Service's Endpoints) in any namespace could otherwise make the proxy, which runs
 * on the host network, connect to the node itself or to the cloud metadata service with the
 * node's identity (CVE-2021-25740 and the checks kube-proxy's validation has for it). Kubernetes
 * validation refuses the unspecified, loopback and link-local ranges for Endpoints; slices are not
 * validated that way, so the proxy checks both. The metadata addresses come first so that the
 * warning names them for what they are.
 */
const REFUSED: readonly Range[] = [
  [ipaddr.parse('169.254.169.254'), 32, 'cloud metadata address'],
  [ipaddr.parse('fd00:ec2::254'), 128, 'cloud metadata address'],
  [ipaddr.parse('127.0.0.0'), 8, 'loopback address'],
  [ipaddr.parse('::1'), 128, 'loopback address'],
  [ipaddr.parse('169.254.0.0'), 16, 'link-local address'],
  [ipaddr.parse('fe80::'), 10, 'link-local address'],
  [ipaddr.parse('224.0.0.0'), 24, 'link-local multicast address'],
  [ipaddr.parse('ff02::'), 16, 'link-local multicast address'],
  // Connecting to 0.0.0.0 or :: reaches the local host.
  [ipaddr.parse('0.0.0.0'), 8, 'unspecified address'],
  [ipaddr.parse('::'), 128, 'unspecified address'],
];

/** Why `address` may not be an endpoint, or undefined when it may. Host names (FQDN slices) are not judged. */
export function refusedAddressReason(address: string, allowLoopback = false): string | undefined {
  if (!ipaddr.isValid(address)) return undefined;
  // ipaddr.process turns ::ffff:127.0.0.1 into 127.0.0.1: the kernel connects to it as that.
  const ip = ipaddr.process(address);
  for (const [net, bits, reason] of REFUSED) {
    if (allowLoopback && reason === 'loopback address') continue;
    if (ip.kind() === net.kind() && ip.match(net as never, bits)) return reason;
  }
  return undefined;
}

/**
 * The slice without refused addresses (an endpoint left with none is dropped; the rest of the
 * slice stays), and what was refused. Returns the same slice object when nothing was refused.
 */
export function filterEndpointAddresses(slice: EndpointSliceSpec, allowLoopback = false): { slice: EndpointSliceSpec; refused: RefusedAddress[] } {
  if (slice.addressType === 'FQDN') return { slice, refused: [] };
  const refused: RefusedAddress[] = [];
  const endpoints: EndpointSpec[] = [];
  for (const endpoint of slice.endpoints) {
    const addresses = endpoint.addresses.filter((address) => {
      const reason = refusedAddressReason(address, allowLoopback);
      if (reason) refused.push({ address, reason });
      return !reason;
    });
    if (addresses.length === endpoint.addresses.length) endpoints.push(endpoint);
    else if (addresses.length > 0) endpoints.push({ ...endpoint, addresses });
  }
  return refused.length === 0 ? { slice, refused } : { slice: { ...slice, endpoints }, refused };
}
