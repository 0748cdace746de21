import { InvalidObjectError } from '../errors.js';
import { parseIP } from './ip-address.js';
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
  isIanaServiceName,
  objectMeta,
  objectRoot,
  oneOf,
  optionalArray,
  optionalBoolean,
  optionalMapping,
  optionalString,
  requireMapping,
  stringMap,
} from './object-fields.js';
import type { ObjectMap } from './object-fields.js';
import { DEFAULT_AFFINITY_TIMEOUT_SECONDS, needsHealthCheck } from './service.js';
import { readScheduler, readWeights } from './scheduler-annotation.js';
import { readMaxConnectionAge } from './max-connection-age-annotation.js';
import { readProxyProtocol } from './proxy-protocol-annotation.js';
import { readTcpIdleTimeout } from './tcp-idle-timeout-annotation.js';
import type { AffinityType, Protocol, ServicePortSpec, ServiceSpec, ServiceType, TrafficPolicy } from './service.js';

const SERVICE_TYPES: readonly ServiceType[] = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];
const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];
const AFFINITIES: readonly AffinityType[] = ['None', 'ClientIP'];
const TRAFFIC_POLICIES: readonly TrafficPolicy[] = ['Cluster', 'Local'];
const MAX_AFFINITY_TIMEOUT_SECONDS = 86400;
/** The values the API server accepts (PreferSameZone and PreferSameNode since Kubernetes 1.33). */
const TRAFFIC_DISTRIBUTIONS = ['PreferClose', 'PreferSameZone', 'PreferSameNode'] as const;

/**
 * Validates a v1 Service (parsed YAML/JSON or an API object) and normalises it into a ServiceSpec
 * with every default applied. Throws InvalidObjectError naming the first bad field.
 */
export function serviceFromObject(obj: unknown): ServiceSpec {
  const root = objectRoot(obj, 'Service');
  const { name, namespace, meta } = objectMeta(root, isDnsLabel, DNS_LABEL_RULE);
  const labels = stringMap(meta['labels'], 'metadata.labels');
  const spec = requireMapping(root['spec'], 'spec');

  const type = oneOf(spec['type'], 'spec.type', SERVICE_TYPES, 'ClusterIP');
  const { clusterIPs, headless } = readClusterIPs(spec, type);
  const externalIPs = optionalArray(spec['externalIPs'], 'spec.externalIPs').map((v, i) => ipAddress(v, indexPath('spec.externalIPs', i)));
  const loadBalancerIPs = readLoadBalancerIPs(root['status']);
  const ports = readPorts(spec, type, headless);

  const sessionAffinity = oneOf(spec['sessionAffinity'], 'spec.sessionAffinity', AFFINITIES, 'None');
  const affinityTimeoutSeconds = readAffinityTimeout(spec['sessionAffinityConfig']);
  const internalTrafficPolicy = oneOf(spec['internalTrafficPolicy'], 'spec.internalTrafficPolicy', TRAFFIC_POLICIES, 'Cluster');
  const externalTrafficPolicy = oneOf(spec['externalTrafficPolicy'], 'spec.externalTrafficPolicy', TRAFFIC_POLICIES, 'Cluster');
  const healthCheckNodePort = readHealthCheckNodePort(spec['healthCheckNodePort'], { type, externalTrafficPolicy }, ports);
  const trafficDistribution = readTrafficDistribution(spec['trafficDistribution']);
  const tcpIdleTimeoutMs = readTcpIdleTimeout(meta);
  const scheduler = readScheduler(meta);
  const weights = readWeights(meta);
  const proxyProtocol = readProxyProtocol(meta, ports);
  const maxConnectionAgeMs = readMaxConnectionAge(meta);

  return {
    namespace,
    name,
    type,
    clusterIPs,
    headless,
    externalIPs,
    loadBalancerIPs,
    ports,
    sessionAffinity,
    // The timeout means nothing without ClientIP affinity; normalising it keeps such specs equal.
    affinityTimeoutSeconds: sessionAffinity === 'ClientIP' ? affinityTimeoutSeconds : DEFAULT_AFFINITY_TIMEOUT_SECONDS,
    internalTrafficPolicy,
    externalTrafficPolicy,
    healthCheckNodePort,
    trafficDistribution,
    labels,
    externalName: readExternalName(spec, type),
    publishNotReadyAddresses: readPublishNotReadyAddresses(spec, meta),
    // Only when annotated, so that specs without it stay deep-equal to what they were.
    ...(tcpIdleTimeoutMs !== undefined ? { tcpIdleTimeoutMs } : {}),
    ...(scheduler !== undefined ? { scheduler } : {}),
    ...(weights !== undefined ? { weights } : {}),
    ...(proxyProtocol !== undefined ? { proxyProtocol } : {}),
    ...(maxConnectionAgeMs !== undefined ? { maxConnectionAgeMs } : {}),
  };
}

/** The legacy spelling of publishNotReadyAddresses, still named by the DNS specification. */
const TOLERATE_UNREADY_ANNOTATION = 'service.alpha.kubernetes.io/tolerate-unready-endpoints';

/** As the API server's validation: required for ExternalName, a DNS subdomain (a trailing dot is allowed); ignored otherwise. */
function readExternalName(spec: ObjectMap, type: ServiceType): string {
  const path = 'spec.externalName';
  const raw = optionalString(spec['externalName'], path) ?? '';
  if (type !== 'ExternalName') return '';
  if (raw === '') throw new InvalidObjectError(path, 'is required for ExternalName services');
  const name = raw.endsWith('.') ? raw.slice(0, -1) : raw;
  if (!isDnsSubdomain(name)) throw new InvalidObjectError(path, DNS_SUBDOMAIN_RULE);
  return name;
}

function readPublishNotReadyAddresses(spec: ObjectMap, meta: ObjectMap): boolean {
  const field = optionalBoolean(spec['publishNotReadyAddresses'], 'spec.publishNotReadyAddresses') ?? false;
  const annotations = stringMap(meta['annotations'], 'metadata.annotations');
  return field || annotations[TOLERATE_UNREADY_ANNOTATION] === 'true';
}

function readClusterIPs(spec: ObjectMap, type: ServiceType): { clusterIPs: string[]; headless: boolean } {
  const single = optionalString(spec['clusterIP'], 'spec.clusterIP') ?? '';
  const list = optionalArray(spec['clusterIPs'], 'spec.clusterIPs').map((v, i) => {
    const s = optionalString(v, indexPath('spec.clusterIPs', i));
    if (s === undefined || s === '') throw new InvalidObjectError(indexPath('spec.clusterIPs', i), 'must be a valid IP address');
    return s;
  });
  if (list.length > 0 && single !== '' && single !== list[0]) {
    throw new InvalidObjectError('spec.clusterIP', 'must equal spec.clusterIPs[0]');
  }
  // clusterIPs, when given, is the authoritative (dual-stack) form; clusterIP is its first entry.
  const given = list.length > 0 ? list : single === '' ? [] : [single];
  const field = list.length > 0 ? (i: number) => indexPath('spec.clusterIPs', i) : () => 'spec.clusterIP';

  if (given[0] === 'None') {
    if (given.length > 1) throw new InvalidObjectError(field(1), 'must not be given when the first entry is None');
    if (type === 'ExternalName') throw new InvalidObjectError(field(0), 'must be empty for ExternalName services');
    return { clusterIPs: [], headless: true };
  }
  if (given.length > 2) throw new InvalidObjectError(field(2), 'at most two cluster IPs (one per family) are allowed');
  const ips = given.map((ip, i) => ipAddress(ip, field(i)));
  if (ips.length === 2 && parseIP(ips[0]!)?.family === parseIP(ips[1]!)?.family) {
    throw new InvalidObjectError(field(1), 'must be of the other IP family than the first cluster IP');
  }
  if (type === 'ExternalName' && ips.length > 0) throw new InvalidObjectError(field(0), 'must be empty for ExternalName services');
  return { clusterIPs: ips, headless: false };
}

/** Ingress entries with only a hostname cannot be proxied and are left out. */
function readLoadBalancerIPs(status: unknown): string[] {
  const lb = optionalMapping(optionalMapping(status, 'status')['loadBalancer'], 'status.loadBalancer');
  const out: string[] = [];
  optionalArray(lb['ingress'], 'status.loadBalancer.ingress').forEach((entry, i) => {
    const path = indexPath('status.loadBalancer.ingress', i);
    const ingress = optionalMapping(entry, path);
    const ip = optionalString(ingress['ip'], fieldPath(path, 'ip'));
    if (ip !== undefined && ip !== '') out.push(ipAddress(ip, fieldPath(path, 'ip')));
  });
  return out;
}

function readPorts(spec: ObjectMap, type: ServiceType, headless: boolean): ServicePortSpec[] {
  const raw = optionalArray(spec['ports'], 'spec.ports');
  if (raw.length === 0 && type !== 'ExternalName' && !headless) {
    throw new InvalidObjectError('spec.ports', 'must have at least one port (only headless and ExternalName services may have none)');
  }
  const names = new Set<string>();
  const portProtocols = new Set<string>();
  return raw.map((entry, i) => {
    const path = indexPath('spec.ports', i);
    const p = requireMapping(entry, path);
    const port = integerIn(p['port'], fieldPath(path, 'port'), 1, 65535);
    const protocol = oneOf(p['protocol'], fieldPath(path, 'protocol'), PROTOCOLS, 'TCP');

    const name = optionalString(p['name'], fieldPath(path, 'name')) ?? '';
    if (name === '' && raw.length > 1) throw new InvalidObjectError(fieldPath(path, 'name'), 'is required when the service has more than one port');
    if (name !== '' && !isDnsLabel(name)) throw new InvalidObjectError(fieldPath(path, 'name'), DNS_LABEL_RULE);
    if (names.has(name)) throw new InvalidObjectError(fieldPath(path, 'name'), 'must be unique');
    names.add(name);
    // Two entries for one port and protocol would both claim the same portal.
    if (portProtocols.has(`${port}/${protocol}`)) throw new InvalidObjectError(fieldPath(path, 'port'), 'must be unique per protocol');
    portProtocols.add(`${port}/${protocol}`);

    const targetPort = readTargetPort(p['targetPort'], fieldPath(path, 'targetPort'), port);
    const nodePort = isAbsent(p['nodePort']) ? 0 : integerIn(p['nodePort'], fieldPath(path, 'nodePort'), 0, 65535);
    if (nodePort !== 0 && type !== 'NodePort' && type !== 'LoadBalancer') {
      throw new InvalidObjectError(fieldPath(path, 'nodePort'), 'may only be set for NodePort and LoadBalancer services');
    }
    return { name, protocol, port, targetPort, nodePort };
  });
}

/** As Kubernetes' defaulting: an absent, 0 or '' targetPort means "the same as port". */
function readTargetPort(v: unknown, path: string, port: number): number | string {
  if (isAbsent(v) || v === 0 || v === '') return port;
  const reason = 'must be an integer 1-65535 or a port name';
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 1 || v > 65535) throw new InvalidObjectError(path, reason);
    return v;
  }
  if (typeof v === 'string' && isIanaServiceName(v)) return v;
  throw new InvalidObjectError(path, reason);
}

function readAffinityTimeout(config: unknown): number {
  const clientIP = optionalMapping(optionalMapping(config, 'spec.sessionAffinityConfig')['clientIP'], 'spec.sessionAffinityConfig.clientIP');
  const t = clientIP['timeoutSeconds'];
  if (isAbsent(t)) return DEFAULT_AFFINITY_TIMEOUT_SECONDS;
  return integerIn(t, 'spec.sessionAffinityConfig.clientIP.timeoutSeconds', 1, MAX_AFFINITY_TIMEOUT_SECONDS);
}

/**
 * As the API server validates it: only a LoadBalancer with externalTrafficPolicy Local has one.
 * The API server also allocates one whenever that is the case; a manifest may leave it out, and
 * then no health check is served (kube-proxy logs the same case as an error and serves none).
 * It comes from the node port range too, so it cannot be one of the service's own node ports.
 */
function readHealthCheckNodePort(v: unknown, svc: Pick<ServiceSpec, 'type' | 'externalTrafficPolicy'>, ports: readonly ServicePortSpec[]): number {
  const path = 'spec.healthCheckNodePort';
  if (isAbsent(v) || v === 0) return 0;
  const port = integerIn(v, path, 1, 65535);
  if (!needsHealthCheck(svc)) throw new InvalidObjectError(path, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'");
  const same = ports.findIndex((p) => p.nodePort === port);
  if (same >= 0) throw new InvalidObjectError(path, `must differ from ${fieldPath(indexPath('spec.ports', same), 'nodePort')}`);
  return port;
}

/** '' when unset; otherwise one of the values the API server accepts. */
function readTrafficDistribution(v: unknown): string {
  const path = 'spec.trafficDistribution';
  if (optionalString(v, path) === undefined || v === '') return '';
  return oneOf(v, path, TRAFFIC_DISTRIBUTIONS, 'PreferClose');
}
