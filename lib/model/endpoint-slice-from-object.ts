import { InvalidObjectError } from '../errors.js';
import type { EndpointHints, EndpointPortSpec, EndpointSliceSpec, EndpointSpec } from './endpoint-slice.js';
import { readTargetRef } from './target-ref.js';
import { parseIP } from './ip-address.js';
import type { IPFamily } from './ip-address.js';
import {
  DNS_LABEL_RULE,
  DNS_SUBDOMAIN_RULE,
  fieldPath,
  indexPath,
  integerIn,
  ipAddress,
  isAbsent,
  isDnsLabel,
  isDnsSubdomain,
  keyPath,
  objectMeta,
  objectRoot,
  oneOf,
  optionalArray,
  optionalBoolean,
  optionalMapping,
  optionalString,
  requireMapping,
} from './object-fields.js';
import type { Protocol } from './service.js';
import { triggerTimeOf } from './trigger-time.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

const LABELS_PATH = 'metadata.labels';
const SERVICE_NAME_PATH = keyPath(LABELS_PATH, SERVICE_NAME_LABEL);
const ADDRESS_TYPES: readonly EndpointSliceSpec['addressType'][] = ['IPv4', 'IPv6', 'FQDN'];
const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

/** Validates a `discovery.k8s.io/v1` EndpointSlice and normalises it. Throws InvalidObjectError naming the field. */
export function endpointSliceFromObject(obj: unknown): EndpointSliceSpec {
  const root = objectRoot(obj, 'EndpointSlice');
  const { name, namespace, meta } = objectMeta(root, isDnsSubdomain, DNS_SUBDOMAIN_RULE);
  const serviceName = optionalString(optionalMapping(meta['labels'], LABELS_PATH)[SERVICE_NAME_LABEL], SERVICE_NAME_PATH);
  if (serviceName === undefined || serviceName === '') throw new InvalidObjectError(SERVICE_NAME_PATH, 'is required: the name of the Service this slice belongs to');
  if (!isDnsLabel(serviceName)) throw new InvalidObjectError(SERVICE_NAME_PATH, DNS_LABEL_RULE);

  if (isAbsent(root['addressType'])) throw new InvalidObjectError('addressType', 'is required');
  const addressType = oneOf(root['addressType'], 'addressType', ADDRESS_TYPES, 'IPv4');
  const endpoints = optionalArray(root['endpoints'], 'endpoints').map((entry, i) => readEndpoint(entry, indexPath('endpoints', i), addressType, namespace));
  const ports = readPorts(root['ports'], 'ports');
  const triggerTimeMs = triggerTimeOf(meta);
  return { namespace, name, serviceName, addressType, ports, endpoints, ...(triggerTimeMs !== undefined ? { triggerTimeMs } : {}) };
}

function readEndpoint(entry: unknown, path: string, addressType: EndpointSliceSpec['addressType'], namespace: string): EndpointSpec {
  const e = requireMapping(entry, path);
  const addressesPath = fieldPath(path, 'addresses');
  const raw = optionalArray(e['addresses'], addressesPath);
  if (raw.length === 0) throw new InvalidObjectError(addressesPath, 'must have at least one address');
  const addresses = raw.map((a, i) => {
    const p = indexPath(addressesPath, i);
    if (addressType !== 'FQDN') return ipAddress(a, p, addressType);
    if (typeof a !== 'string' || a === '') throw new InvalidObjectError(p, 'must be a host name');
    return a;
  });
  const conditionsPath = fieldPath(path, 'conditions');
  const conditions = optionalMapping(e['conditions'], conditionsPath);
  const ready = optionalBoolean(conditions['ready'], fieldPath(conditionsPath, 'ready')) ?? true;
  const serving = optionalBoolean(conditions['serving'], fieldPath(conditionsPath, 'serving')) ?? ready;
  const terminating = optionalBoolean(conditions['terminating'], fieldPath(conditionsPath, 'terminating')) ?? false;
  const nodeName = optionalString(e['nodeName'], fieldPath(path, 'nodeName')) ?? '';
  const zone = optionalString(e['zone'], fieldPath(path, 'zone')) ?? '';
  const hints = readHints(e['hints'], fieldPath(path, 'hints'));
  const targetRef = readTargetRef(e['targetRef'], fieldPath(path, 'targetRef'), namespace);
  const hostname = readHostname(e['hostname'], fieldPath(path, 'hostname'));
  return { addresses, ready, serving, terminating, nodeName, zone, hints, hostname, ...(targetRef ? { targetRef } : {}) };
}

/**
 * `hints.forZones[].name` and `hints.forNodes[].name`. Hints with neither list give undefined, as
 * kube-proxy treats an endpoint with empty hint lists as having no hint.
 */
function readHints(v: unknown, path: string): EndpointHints | undefined {
  // Most endpoints carry none; two Sets and two sorts for each of them made reading 10,000 slices
  // of one endpoint (warm) 19-24 ms where it is 16-18 without.
  if (isAbsent(v)) return undefined;
  const hints = optionalMapping(v, path);
  const names = (field: string): string[] => {
    const listPath = fieldPath(path, field);
    const seen = new Set<string>();
    optionalArray(hints[field], listPath).forEach((entry, i) => {
      const namePath = fieldPath(indexPath(listPath, i), 'name');
      const name = optionalString(requireMapping(entry, indexPath(listPath, i))['name'], namePath);
      if (name === undefined || name === '') throw new InvalidObjectError(namePath, 'is required');
      seen.add(name);
    });
    return [...seen].sort();
  };
  const forZones = names('forZones');
  const forNodes = names('forNodes');
  return forZones.length === 0 && forNodes.length === 0 ? undefined : { forZones, forNodes };
}

/** An endpoint's hostname becomes a DNS label under its service's name, so it must be one. */
function readHostname(v: unknown, path: string): string {
  const hostname = optionalString(v, path) ?? '';
  if (hostname !== '' && !isDnsLabel(hostname)) throw new InvalidObjectError(path, DNS_LABEL_RULE);
  return hostname;
}

/** Absent ports mean "the slice declares none" (undefined), which is not the same as an empty list. */
function readPorts(v: unknown, path: string): EndpointPortSpec[] | undefined {
  if (isAbsent(v)) return undefined;
  const names = new Set<string>();
  return optionalArray(v, path).map((entry, i) => {
    const p = requireMapping(entry, indexPath(path, i));
    const namePath = fieldPath(indexPath(path, i), 'name');
    const name = optionalString(p['name'], namePath) ?? '';
    if (name !== '' && !isDnsLabel(name)) throw new InvalidObjectError(namePath, DNS_LABEL_RULE);
    if (names.has(name)) throw new InvalidObjectError(namePath, 'must be unique');
    names.add(name);
    const protocol = oneOf(p['protocol'], fieldPath(indexPath(path, i), 'protocol'), PROTOCOLS, 'TCP');
    const port = integerIn(p['port'], fieldPath(indexPath(path, i), 'port'), 1, 65535);
    return { name, protocol, port };
  });
}

/**
 * Converts a v1 Endpoints object into slices, one per subset: `<name>/subset-<i>` (a name no real
 * EndpointSlice can have, since slice names cannot contain '/'). A slice holds one address family,
 * so a subset with both IPv4 and IPv6 addresses gives `<name>/subset-<i>` for IPv4 and
 * `<name>/subset-<i>-v6` for IPv6; an IPv6-only subset is just `<name>/subset-<i>`.
 * `addresses` are ready and serving; `notReadyAddresses` are neither.
 */
export function endpointSlicesFromEndpoints(obj: unknown): EndpointSliceSpec[] {
  const root = objectRoot(obj, 'Endpoints');
  const { name, namespace, meta } = objectMeta(root, isDnsSubdomain, DNS_SUBDOMAIN_RULE);
  const triggerTimeMs = triggerTimeOf(meta);
  const slices: EndpointSliceSpec[] = [];
  optionalArray(root['subsets'], 'subsets').forEach((entry, i) => {
    const path = indexPath('subsets', i);
    const subset = requireMapping(entry, path);
    const byFamily: Record<IPFamily, EndpointSpec[]> = { IPv4: [], IPv6: [] };
    for (const [field, ready] of [
      ['addresses', true],
      ['notReadyAddresses', false],
    ] as const) {
      optionalArray(subset[field], fieldPath(path, field)).forEach((a, j) => {
        const addrPath = indexPath(fieldPath(path, field), j);
        const address = requireMapping(a, addrPath);
        const ip = ipAddress(address['ip'], fieldPath(addrPath, 'ip'));
        const nodeName = optionalString(address['nodeName'], fieldPath(addrPath, 'nodeName')) ?? '';
        const targetRef = readTargetRef(address['targetRef'], fieldPath(addrPath, 'targetRef'), namespace);
        const hostname = readHostname(address['hostname'], fieldPath(addrPath, 'hostname'));
        byFamily[parseIP(ip)!.family].push({ addresses: [ip], ready, serving: ready, terminating: false, nodeName, zone: '', hints: undefined, hostname, ...(targetRef ? { targetRef } : {}) });
      });
    }
    const ports = readPorts(subset['ports'], fieldPath(path, 'ports'));
    const base = `${name}/subset-${i}`;
    const make = (sliceName: string, addressType: IPFamily): EndpointSliceSpec => ({
      namespace,
      name: sliceName,
      serviceName: name,
      addressType,
      ports,
      endpoints: byFamily[addressType],
      ...(triggerTimeMs !== undefined ? { triggerTimeMs } : {}),
    });
    if (byFamily.IPv4.length === 0 && byFamily.IPv6.length > 0) {
      slices.push(make(base, 'IPv6'));
    } else {
      slices.push(make(base, 'IPv4'));
      if (byFamily.IPv6.length > 0) slices.push(make(`${base}-v6`, 'IPv6'));
    }
  });
  return slices;
}
