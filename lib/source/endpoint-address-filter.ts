import ipaddr from 'ipaddr.js';
import type { EndpointSliceSpec, EndpointSpec } from '../model/endpoint-slice.js';

export interface RefusedAddress {
  readonly address: string;
  readonly reason: string;
}

type Range = readonly [ipaddr.IPv4 | ipaddr.IPv6, number, string];

/**
 * This node's own listeners; given the ports of a slice, at least those at these ports (a source
 * with thousands of listeners need not list them all for every slice).
 */
export type OwnListeners = (ports?: ReadonlySet<number>) => Iterable<OwnListener>;

/** A listener of this node (health, metrics or proxy port) on one of its own addresses. */
export interface OwnListener {
  readonly address: string;
  readonly port: number;
}

export interface EndpointAddressFilterOptions {
  /** Accept loopback addresses (tests of the whole data path only; see KubeSourceOptions). */
  readonly allowLoopback?: boolean;
  /** More ranges to refuse, from the operator (--refuse-endpoint-cidrs): CIDRs or single addresses. */
  readonly refusedCidrs?: readonly string[];
  /**
   * This node's own listeners, asked for at each check (proxy ports come and go). An endpoint
   * address that is one of them at a port of the slice is refused: the proxy would connect to itself
   * (a loop through its own proxy port) or hand its health and metrics servers to any client.
   */
  readonly ownListeners?: OwnListeners;
}

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
  // Instance metadata, credential and platform endpoints that clouds document, each named so that
  // the warning says what was at stake. Most are link-local, and refused below anyway; the ones
  // that are not (Alibaba's is in the shared 100.64.0.0/10 space, Azure's a public address, the
  // IPv6 ones unique-local) would otherwise be proxied. Others can be added by the operator.
  // AWS EC2, Azure, GCP, OpenStack, Oracle Cloud, DigitalOcean, Hetzner: instance metadata (IMDS).
  [ipaddr.parse('169.254.169.254'), 32, 'cloud metadata address (instance metadata service)'],
  // AWS EC2 IMDS over IPv6 (Nitro instances).
  [ipaddr.parse('fd00:ec2::254'), 128, 'cloud metadata address (AWS instance metadata service, IPv6)'],
  // Alibaba Cloud ECS metadata (credentials of the instance RAM role).
  [ipaddr.parse('100.100.100.200'), 32, 'cloud metadata address (Alibaba Cloud ECS metadata)'],
  // Azure WireServer: the host agent's channel (extension settings, certificates) and platform DNS.
  [ipaddr.parse('168.63.129.16'), 32, 'cloud metadata address (Azure WireServer)'],
  // AWS ECS task metadata and task role credentials.
  [ipaddr.parse('169.254.170.2'), 32, 'cloud metadata address (AWS ECS task metadata and credentials)'],
  // AWS EKS Pod Identity agent: pod role credentials.
  [ipaddr.parse('169.254.170.23'), 32, 'cloud metadata address (AWS EKS Pod Identity credentials)'],
  [ipaddr.parse('fd00:ec2::23'), 128, 'cloud metadata address (AWS EKS Pod Identity credentials, IPv6)'],
  // AWS Time Sync Service (NTP): no secret, but a node-local service all the same.
  [ipaddr.parse('169.254.169.123'), 32, 'cloud metadata address (AWS Time Sync Service)'],
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

/** The metadata addresses refused whatever the options, for documentation and the status command. */
export const REFUSED_METADATA_ADDRESSES: readonly string[] = REFUSED.filter(([, , reason]) => reason.startsWith('cloud metadata')).map(([ip]) => ip.toString());

/** Every entry that is not a CIDR or an address, as a problem naming `flag`; empty when all are valid. */
export function validateRefusedCidrs(cidrs: readonly string[], flag = 'refusedCidrs'): string[] {
  return cidrs.filter((c) => toRange(c) === undefined).map((c) => `${flag}: "${c}" is not a CIDR or an IP address (examples: 10.0.0.0/8, 192.168.1.5, fd00::/64)`);
}

function toRange(cidr: string): Range | undefined {
  try {
    if (!cidr.includes('/')) {
      const ip = ipaddr.process(cidr);
      return [ip, ip.kind() === 'ipv4' ? 32 : 128, `refused by the operator (${cidr})`];
    }
    const [ip, bits] = ipaddr.parseCIDR(cidr);
    // ::ffff:a.b.c.d/n is the IPv4 range the kernel connects to.
    if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) return [(ip as ipaddr.IPv6).toIPv4Address(), bits - 96, `refused by the operator (${cidr})`];
    return [ip, bits, `refused by the operator (${cidr})`];
  } catch {
    return undefined;
  }
}

/** Why `address` may not be an endpoint, or undefined when it may. Host names (FQDN slices) are not judged. */
export function refusedAddressReason(address: string, allowLoopback = false, extra: readonly Range[] = []): string | undefined {
  if (!ipaddr.isValid(address)) return undefined;
  // ipaddr.process turns ::ffff:127.0.0.1 into 127.0.0.1: the kernel connects to it as that.
  const ip = ipaddr.process(address);
  for (const [net, bits, reason] of REFUSED) {
    if (allowLoopback && reason === 'loopback address') continue;
    if (ip.kind() === net.kind() && ip.match(net as never, bits)) return reason;
  }
  for (const [net, bits, reason] of extra) {
    if (ip.kind() === net.kind() && ip.match(net as never, bits)) return reason;
  }
  return undefined;
}

/** The same address as the kernel sees it (`::ffff:10.0.0.1` is `10.0.0.1`), or the text when it is none. */
function normalize(address: string): string {
  return ipaddr.isValid(address) ? ipaddr.process(address).toString() : address;
}

/** Compiled options; made once per source with endpointAddressFilter(). */
export interface EndpointAddressFilter {
  readonly allowLoopback: boolean;
  readonly extra: readonly Range[];
  readonly ownListeners: OwnListeners | undefined;
}

/** Compiles the options (invalid CIDRs are left out: check them first with validateRefusedCidrs). */
export function endpointAddressFilter(options: EndpointAddressFilterOptions = {}): EndpointAddressFilter {
  return {
    allowLoopback: options.allowLoopback ?? false,
    extra: (options.refusedCidrs ?? []).map(toRange).filter((r): r is Range => r !== undefined),
    ownListeners: options.ownListeners,
  };
}

/**
 * The slice without refused addresses (an endpoint left with none is dropped; the rest of the
 * slice stays), and what was refused. Returns the same slice object when nothing was refused.
 */
export function filterEndpointAddresses(slice: EndpointSliceSpec, options: boolean | EndpointAddressFilter = false): { slice: EndpointSliceSpec; refused: RefusedAddress[] } {
  if (slice.addressType === 'FQDN') return { slice, refused: [] };
  const filter = typeof options === 'boolean' ? endpointAddressFilter({ allowLoopback: options }) : options;
  const own = ownListenersAtPorts(filter, slice);
  const refused: RefusedAddress[] = [];
  const endpoints: EndpointSpec[] = [];
  for (const endpoint of slice.endpoints) {
    const addresses = endpoint.addresses.filter((address) => {
      const port = own.get(normalize(address));
      const reason = refusedAddressReason(address, filter.allowLoopback, filter.extra) ?? (port === undefined ? undefined : `this node's own listener (port ${port})`);
      if (reason) refused.push({ address, reason });
      return !reason;
    });
    if (addresses.length === endpoint.addresses.length) endpoints.push(endpoint);
    else if (addresses.length > 0) endpoints.push({ ...endpoint, addresses });
  }
  return refused.length === 0 ? { slice, refused } : { slice: { ...slice, endpoints }, refused };
}

/**
 * Own listener address → the first port of the slice it listens on. A slice without ports takes
 * the Service's targetPort, unknown here: then an own address is refused at any listener port.
 */
function ownListenersAtPorts(filter: EndpointAddressFilter, slice: EndpointSliceSpec): Map<string, number> {
  const out = new Map<string, number>();
  if (!filter.ownListeners) return out;
  const ports = slice.ports === undefined ? undefined : new Set(slice.ports.map((p) => p.port));
  for (const { address, port } of filter.ownListeners(ports)) {
    if ((ports === undefined || ports.has(port)) && !out.has(normalize(address))) out.set(normalize(address), port);
  }
  return out;
}
