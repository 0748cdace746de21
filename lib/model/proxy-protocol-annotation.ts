import { InvalidObjectError } from '../errors.js';
import { isMapping } from './object-fields.js';
import type { ObjectMap } from './object-fields.js';
import type { ServicePortSpec } from './service.js';

/**
 * The Service annotation that makes the proxy send a PROXY protocol header to the endpoint before
 * the client's bytes: `v1` (text) or `v2` (binary). It covers the Service's TCP ports, or those
 * named in PROXY_PROTOCOL_PORTS_ANNOTATION. UDP ports are never covered: PROXY protocol over UDP
 * is not something common receivers accept, so naming a UDP port is an error.
 */
export const PROXY_PROTOCOL_ANNOTATION = 'kube-userspace-proxy.io/proxy-protocol';

/** Optional: the ports (by name or number, comma separated) the header is sent on; default all TCP ports. */
export const PROXY_PROTOCOL_PORTS_ANNOTATION = 'kube-userspace-proxy.io/proxy-protocol-ports';

export type ProxyProtocolVersion = 'v1' | 'v2';

/** The annotations' meaning: the version, and the names of the service ports it covers. */
export interface ProxyProtocolSetting {
  readonly version: ProxyProtocolVersion;
  /** Service port names ('' for a single unnamed port). */
  readonly ports: readonly string[];
}

function field(name: string): string {
  return `metadata.annotations["${name}"]`;
}

/** The annotations read against the Service's ports; undefined when absent; throws InvalidObjectError naming the field when bad. */
export function readProxyProtocol(meta: ObjectMap, ports: readonly ServicePortSpec[]): ProxyProtocolSetting | undefined {
  const annotations = meta['annotations'];
  if (!isMapping(annotations)) return undefined;
  const v = annotations[PROXY_PROTOCOL_ANNOTATION];
  const list = annotations[PROXY_PROTOCOL_PORTS_ANNOTATION];
  if (v === undefined || v === null) {
    if (list !== undefined && list !== null) throw new InvalidObjectError(field(PROXY_PROTOCOL_PORTS_ANNOTATION), `needs ${PROXY_PROTOCOL_ANNOTATION} (v1 or v2)`);
    return undefined;
  }
  if (v !== 'v1' && v !== 'v2') throw new InvalidObjectError(field(PROXY_PROTOCOL_ANNOTATION), `must be v1 or v2, got ${JSON.stringify(v)}`);
  if (list === undefined || list === null) return { version: v, ports: ports.filter((p) => p.protocol === 'TCP').map((p) => p.name) };
  if (typeof list !== 'string' || list.trim() === '') {
    throw new InvalidObjectError(field(PROXY_PROTOCOL_PORTS_ANNOTATION), `must be a comma-separated list of port names or numbers, got ${JSON.stringify(list)}`);
  }
  const names: string[] = [];
  for (const item of list.split(',').map((s) => s.trim())) {
    const port = ports.find((p) => p.name === item || String(p.port) === item);
    if (port === undefined) throw new InvalidObjectError(field(PROXY_PROTOCOL_PORTS_ANNOTATION), `names no port of the Service: ${JSON.stringify(item)}`);
    if (port.protocol !== 'TCP')
      throw new InvalidObjectError(field(PROXY_PROTOCOL_PORTS_ANNOTATION), `port ${JSON.stringify(item)} is ${port.protocol}: the PROXY protocol header is sent on TCP ports only`);
    if (!names.includes(port.name)) names.push(port.name);
  }
  return { version: v, ports: names };
}
