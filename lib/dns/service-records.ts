import type { EndpointSliceSpec, EndpointSpec } from '../model/endpoint-slice.js';
import { parseIP } from '../model/ip-address.js';
import type { ServicePortSpec, ServiceSpec } from '../model/service.js';
import { endpointLabel } from './reverse-name.js';

/** An SRV record's data, the target as an absolute name without the trailing dot. */
export interface SrvData {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly target: string;
}

/** The data at one owner name. A name with none of it still exists (NODATA rather than NXDOMAIN). */
export interface NameRecords {
  readonly a: string[];
  readonly aaaa: string[];
  readonly srv: SrvData[];
  /** ExternalName services: the target, which every query type is answered with. */
  cname: string | undefined;
}

/** Everything one service puts into the zone. */
export interface ServiceRecords {
  /**
   * By name relative to `<service>.<ns>.svc.<zone>`: '' is that name itself, `web-0` an endpoint
   * hostname, `_http._tcp` an SRV name and `_tcp` the empty name between. No entry at all (not even
   * '') means the service's whole subtree does not exist: a headless service without ready endpoints.
   */
  readonly names: ReadonlyMap<string, NameRecords>;
  /** PTR data: an address and the absolute name it maps back to. */
  readonly ptr: ReadonlyArray<{ readonly ip: string; readonly target: string }>;
}

/** RFC 2782 numbers; the specification leaves them to the implementation. CoreDNS uses these. */
const SRV_PRIORITY = 0;
const SRV_WEIGHT = 100;

/** The absolute name of a service: `<service>.<ns>.svc.<zone>`. */
export function serviceName(svc: ServiceSpec, zone: string): string {
  return `${svc.name}.${svc.namespace}.svc.${zone}`;
}

/**
 * The records the Kubernetes DNS-Based Service Discovery specification (schema 1.1.0) requires of
 * one service: A/AAAA, SRV per named port and PTR for a service with cluster IPs; the ready
 * endpoints' addresses, per-endpoint names, SRV and PTR for a headless service; a CNAME for an
 * ExternalName service. Unnamed ports have no SRV record.
 */
export function serviceRecords(svc: ServiceSpec, slices: Iterable<EndpointSliceSpec>, zone: string): ServiceRecords {
  const names = new Map<string, NameRecords>();
  const ptr: Array<{ ip: string; target: string }> = [];
  const at = (rel: string): NameRecords => {
    let r = names.get(rel);
    if (!r) names.set(rel, (r = { a: [], aaaa: [], srv: [], cname: undefined }));
    return r;
  };
  const self = serviceName(svc, zone);

  if (svc.type === 'ExternalName') {
    at('').cname = svc.externalName;
    return { names, ptr };
  }
  if (!svc.headless) {
    const top = at('');
    for (const ip of svc.clusterIPs) {
      addAddress(top, ip);
      ptr.push({ ip, target: self });
    }
    for (const port of namedPorts(svc)) addSrv(at, port, { priority: SRV_PRIORITY, weight: SRV_WEIGHT, port: port.port, target: self });
    return { names, ptr };
  }

  // Headless: the ready endpoints (all of them with publishNotReadyAddresses), each under its hostname.
  for (const slice of slices) {
    if (slice.addressType === 'FQDN') continue;
    for (const ep of slice.endpoints) {
      if (!ep.ready && !svc.publishNotReadyAddresses) continue;
      const label = hostnameOf(ep);
      const target = `${label}.${self}`;
      for (const ip of ep.addresses) {
        addAddress(at(''), ip);
        addAddress(at(label), ip);
        ptr.push({ ip, target });
      }
      for (const port of namedPorts(svc)) {
        const number = endpointPort(slice, port);
        if (number !== undefined) addSrv(at, port, { priority: SRV_PRIORITY, weight: SRV_WEIGHT, port: number, target });
      }
    }
  }
  return { names, ptr };
}

function namedPorts(svc: ServiceSpec): ServicePortSpec[] {
  return svc.ports.filter((p) => p.name !== '');
}

function hostnameOf(ep: EndpointSpec): string {
  return ep.hostname !== '' ? ep.hostname : endpointLabel(ep.addresses[0]!);
}

function addAddress(r: NameRecords, ip: string): void {
  const list = parseIP(ip)?.family === 'IPv6' ? r.aaaa : r.a;
  if (!list.includes(ip)) list.push(ip);
}

function addSrv(at: (rel: string) => NameRecords, port: ServicePortSpec, data: SrvData): void {
  const proto = `_${port.protocol.toLowerCase()}`;
  at(proto);
  const r = at(`_${port.name}.${proto}`);
  if (!r.srv.some((s) => s.target === data.target && s.port === data.port)) r.srv.push(data);
}

/**
 * A headless service's endpoints are dialled directly, so SRV records carry the endpoint's port:
 * the slice's port of the same name and protocol; a slice that declares no ports takes the
 * service's numeric targetPort. A slice without the port gives no record for it.
 */
function endpointPort(slice: EndpointSliceSpec, port: ServicePortSpec): number | undefined {
  if (slice.ports === undefined) return typeof port.targetPort === 'number' ? port.targetPort : undefined;
  return slice.ports.find((p) => p.name === port.name && p.protocol === port.protocol)?.port;
}
