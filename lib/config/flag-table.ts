import type { Config } from './config.js';
import { DEFAULT_CONFIG } from './config.js';
import { formatDuration } from './duration.js';
import { formatPortRange } from './port-range.js';

export type FlagKind = 'string' | 'strings' | 'int' | 'duration' | 'bool' | 'optional';

/** One command-line flag: how it parses, how --help shows it, and where a config file holds it. */
export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  readonly value?: string;
  readonly help: string;
  readonly def?: string;
  /** For kind 'optional': the value when the flag is given without `=VALUE`. */
  readonly implicit?: string;
  /** kube-proxy's name for the same flag: the command line takes it too, as another spelling of this one. */
  readonly aliasOf?: string;
  /**
   * The KubeProxyConfiguration field (dotted path) holding this setting, when v1alpha1 has one:
   * --write-config-to writes it there rather than in the KubeUserspaceProxyConfiguration.
   */
  readonly kubeProxyField?: string;
  /** false: only the command line takes it (it acts on the command line itself, or is an alias). */
  readonly inFile?: false;
  /** The setting as a config file writes it, when the Config field is not simply camelCase(name). */
  readonly toFile?: (config: Config) => unknown;
}

/** More processes than this only add memory and context switches. */
export const MAX_WORKERS = 64;

/** Every flag, in the order --help shows them. Names follow kube-proxy where it has the flag. */
export const FLAGS: readonly FlagSpec[] = [
  { name: 'manifests', kind: 'strings', value: 'PATH', help: 'Service, Endpoints and EndpointSlice manifests (YAML or JSON file, or directory); repeatable; watched for changes' },
  {
    name: 'kubeconfig',
    kind: 'string',
    value: 'PATH',
    kubeProxyField: 'clientConnection.kubeconfig',
    help: 'watch a Kubernetes API server using this kubeconfig (default without --manifests: in-cluster config, then $KUBECONFIG, then ~/.kube/config)',
  },
  { name: 'context', kind: 'string', value: 'NAME', toFile: (c) => c.kubeContext, help: 'the kubeconfig context to use (default: its current-context)' },
  { name: 'master', kind: 'string', value: 'URL', help: "the API server URL (overrides the kubeconfig's server)" },
  { name: 'use-endpoints', kind: 'bool', help: 'watch v1 Endpoints instead of EndpointSlices (clusters older than 1.21)' },
  { name: 'service-proxy-name', kind: 'string', value: 'NAME', help: 'serve services labelled service.kubernetes.io/service-proxy-name=NAME (default: only unlabelled ones, as kube-proxy)' },
  {
    name: 'config-sync-period',
    kind: 'duration',
    value: 'DURATION',
    kubeProxyField: 'configSyncPeriod',
    def: formatDuration(DEFAULT_CONFIG.configSyncPeriodMs),
    help: 'longest silence of an API watch before the agent re-lists',
  },
  {
    name: 'kube-api-qps',
    kind: 'string',
    value: 'QPS',
    kubeProxyField: 'clientConnection.qps',
    def: String(DEFAULT_CONFIG.kubeApiQps),
    help: "most requests per second to the API server, as kube-proxy's flag",
  },
  {
    name: 'kube-api-burst',
    kind: 'int',
    value: 'N',
    kubeProxyField: 'clientConnection.burst',
    def: String(DEFAULT_CONFIG.kubeApiBurst),
    help: 'requests to the API server allowed at once above --kube-api-qps',
  },
  {
    name: 'kube-api-content-type',
    kind: 'string',
    value: 'TYPE',
    kubeProxyField: 'clientConnection.contentType',
    def: DEFAULT_CONFIG.kubeApiContentType,
    help: "content type of requests to the API server; the client speaks JSON only (a type other than JSON or kube-proxy's default protobuf is accepted with a warning)",
  },
  {
    name: 'hostname-override',
    kind: 'string',
    value: 'NAME',
    kubeProxyField: 'hostnameOverride',
    help: "this node's name, for internalTrafficPolicy/externalTrafficPolicy Local (default: the host name)",
  },
  {
    name: 'node-labels',
    kind: 'string',
    value: 'K=V,...',
    toFile: (c) => ({ ...c.nodeLabels }),
    help: "with --manifests: this node's labels, as its Node object would give them (topology.kubernetes.io/zone=Z for topology-aware routing); in a config file, a map",
  },
  {
    name: 'dial-via',
    kind: 'string',
    value: 'MODE',
    def: DEFAULT_CONFIG.dialVia,
    help: "how endpoints are reached: direct (their pod IPs) or port-forward (through the API server's pods/portforward, TCP only: for a cluster whose pod IPs this machine cannot reach)",
  },
  { name: 'namespace', kind: 'strings', value: 'NS', def: 'all', toFile: (c) => [...c.namespaces], help: 'serve only Services in these namespaces (comma-separated, repeatable)' },
  {
    name: 'selector',
    kind: 'string',
    value: 'SELECTOR',
    toFile: (c) => c.selector,
    help: 'serve only Services whose labels match this label selector (k=v, k!=v, k in (a,b), k notin (a,b), k, !k; comma-joined, all must hold)',
  },
  {
    name: 'bind-address',
    kind: 'string',
    value: 'IP',
    kubeProxyField: 'bindAddress',
    def: DEFAULT_CONFIG.bindAddress,
    help: 'address listeners bind to when a service has no portal address on this machine',
  },
  {
    name: 'proxy-port-range',
    kind: 'string',
    value: 'RANGE',
    kubeProxyField: 'portRange',
    def: '""',
    toFile: (c) => formatPortRange(c.proxyPortRange),
    help: 'proxy ports for the redirect modes: "" (kernel chooses), B-E, B+N, or a single port',
  },
  {
    name: 'udp-timeout',
    kind: 'duration',
    value: 'DURATION',
    def: formatDuration(DEFAULT_CONFIG.udpTimeoutMs),
    help: 'idle time after which a UDP session closes (the legacy proxy used 250ms, too short for slow DNS replies)',
  },
  {
    name: 'udp-max-sessions',
    kind: 'int',
    value: 'N',
    def: 'derived from the open-file limit',
    help: 'most UDP sessions per service port, the least recently active evicted first; 0 or unset: half the descriptors the open-file limit leaves after headroom',
  },
  {
    name: 'tcp-idle-timeout',
    kind: 'duration',
    value: 'DURATION',
    def: formatDuration(DEFAULT_CONFIG.tcpIdleTimeoutMs),
    help: 'close a TCP connection with no byte either way for this long (FIN to both peers, RST if they do not close); 0 = never; a Service overrides it with the annotation kube-userspace-proxy.io/tcp-idle-timeout',
  },
  {
    name: 'workers',
    kind: 'string',
    value: 'N|auto',
    def: String(DEFAULT_CONFIG.workers),
    help: 'processes serving connections and UDP sessions, this one included; auto = one per CPU (TCP ports with ClientIP affinity stay in this one)',
  },
  { name: 'proxy-mode', kind: 'string', value: 'MODE', kubeProxyField: 'mode', inFile: false, def: 'userspace', help: "kube-proxy's flag: this proxy is the userspace mode, the only value taken" },
  {
    name: 'redirect',
    kind: 'string',
    value: 'MODE',
    def: DEFAULT_CONFIG.redirect,
    help: 'how portal traffic reaches the listeners: none (listen on portal addresses directly), iptables, nftables, or auto (iptables, else nftables, else none --assign-service-ips)',
  },
  {
    name: 'assign-service-ips',
    kind: 'optional',
    value: '[=IFACE]',
    implicit: 'lo',
    help: 'with --redirect none: add each service IP to IFACE (default lo) and listen on it directly; removed again on exit',
  },
  {
    name: 'nodeport-addresses',
    kind: 'strings',
    value: 'CIDRS',
    kubeProxyField: 'nodePortAddresses',
    def: 'all local addresses',
    toFile: (c) => [...c.nodePortAddresses],
    help: 'CIDRs (comma-separated, repeatable) whose local addresses serve NodePorts; the keywords all and localhost as kube-proxy',
  },
  {
    name: 'refuse-endpoint-cidrs',
    kind: 'strings',
    value: 'CIDRS',
    toFile: (c) => [...c.refuseEndpointCidrs],
    help: 'endpoint addresses never proxied to (comma-separated, repeatable), beside the built-in cloud metadata, loopback, link-local and own-listener ones',
  },
  {
    name: 'service-ip-pool',
    kind: 'string',
    value: 'CIDR',
    help: 'with --redirect none: give each service a stable address of CIDR (inside 127.0.0.0/8, say 127.1.0.0/16: no root needed) and listen there at its ports, in place of its ClusterIPs',
  },
  {
    name: 'hosts-file',
    kind: 'string',
    value: 'PATH',
    help: 'keep a marked block of service names (service, service.ns, service.ns.svc.ZONE) in PATH, normally /etc/hosts; removed on exit and by --cleanup',
  },
  { name: 'cleanup', kind: 'bool', help: 'remove rules, chains, tables and addresses left by earlier runs (and legacy kube-proxy userspace chains), then exit' },
  {
    name: 'sync-period',
    kind: 'duration',
    value: 'DURATION',
    kubeProxyField: 'iptables.syncPeriod',
    def: formatDuration(DEFAULT_CONFIG.syncPeriodMs),
    help: 'longest time between two syncs of listeners with the services',
  },
  { name: 'iptables-sync-period', kind: 'duration', value: 'DURATION', aliasOf: 'sync-period', inFile: false, help: "kube-proxy's name for --sync-period" },
  {
    name: 'min-sync-period',
    kind: 'duration',
    value: 'DURATION',
    kubeProxyField: 'iptables.minSyncPeriod',
    def: formatDuration(DEFAULT_CONFIG.minSyncPeriodMs),
    help: 'shortest time between syncs once a burst of two has been used',
  },
  { name: 'iptables-min-sync-period', kind: 'duration', value: 'DURATION', aliasOf: 'min-sync-period', inFile: false, help: "kube-proxy's name for --min-sync-period" },
  {
    name: 'shutdown-grace-period',
    kind: 'duration',
    value: 'DURATION',
    def: formatDuration(DEFAULT_CONFIG.shutdownGracePeriodMs),
    help: 'on SIGTERM: stop accepting, remove rules, let established connections finish this long, then close them (a second signal exits at once)',
  },
  {
    name: 'oom-score-adj',
    kind: 'int',
    value: 'N',
    kubeProxyField: 'oomScoreAdj',
    def: String(DEFAULT_CONFIG.oomScoreAdj),
    help: 'oom_score_adj of this process (and its workers), -1000 to 1000, as kube-proxy',
  },
  {
    name: 'healthz-bind-address',
    kind: 'string',
    value: 'HOST:PORT',
    kubeProxyField: 'healthzBindAddress',
    def: DEFAULT_CONFIG.healthzBindAddress,
    help: 'health server (/healthz, /livez); "" turns it off',
  },
  {
    name: 'metrics-bind-address',
    kind: 'string',
    value: 'HOST:PORT',
    kubeProxyField: 'metricsBindAddress',
    def: DEFAULT_CONFIG.metricsBindAddress,
    help: 'metrics server (/metrics, /proxyMode, /status); "" turns it off',
  },
  {
    name: 'dns-bind-address',
    kind: 'string',
    value: 'HOST:PORT',
    def: '""',
    help: 'serve DNS for the cluster domain (UDP and TCP) on this address, e.g. 127.0.0.1:1053; "" (the default) turns it off',
  },
  { name: 'cluster-domain', kind: 'string', value: 'DOMAIN', def: DEFAULT_CONFIG.clusterDomain, help: "the DNS zone of services, as kubelet's flag: <service>.<namespace>.svc.DOMAIN" },
  {
    name: 'dns-ttl',
    kind: 'duration',
    value: 'DURATION',
    def: formatDuration(DEFAULT_CONFIG.dnsTtlMs),
    help: 'TTL of DNS answers and of negative answers for the cluster domain, whole seconds up to 1h',
  },
  {
    name: 'dns-upstream',
    kind: 'string',
    value: 'forward|refuse',
    def: DEFAULT_CONFIG.dnsUpstream,
    help: 'DNS queries outside the cluster domain: forward them to the name servers of --resolv-conf, or answer REFUSED',
  },
  { name: 'resolv-conf', kind: 'string', value: 'PATH', def: DEFAULT_CONFIG.resolvConf, help: "where --dns-upstream forward finds its name servers, as kubelet's flag (re-read when it changes)" },
  { name: 'dry-run', kind: 'bool', help: 'print the rules (iptables-restore or nft syntax) that --redirect would install for the manifests, change nothing, exit' },
  { name: 'v', kind: 'int', value: 'N', kubeProxyField: 'logging.verbosity', inFile: false, help: "log verbosity as kube-proxy's klog levels: 0-3 info, 4 and up debug (also -v N)" },
  { name: 'log-level', kind: 'string', value: 'LEVEL', def: DEFAULT_CONFIG.logLevel, help: 'error, warn, info (service and listener changes) or debug (every connection)' },
  { name: 'log-format', kind: 'string', value: 'FORMAT', kubeProxyField: 'logging.format', def: 'text on a terminal, else json', help: 'text or json' },
  { name: 'logging-format', kind: 'string', value: 'FORMAT', aliasOf: 'log-format', inFile: false, help: "kube-proxy's name for --log-format" },
  {
    name: 'config',
    kind: 'string',
    value: 'FILE',
    inFile: false,
    help: 'a KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1, as kubeadm writes it) and/or a KubeUserspaceProxyConfiguration; flags override it',
  },
  { name: 'write-config-to', kind: 'string', value: 'FILE', inFile: false, help: 'write the effective configuration (both kinds) to FILE and exit' },
  { name: 'help', kind: 'bool', inFile: false, help: 'print this help and exit' },
  { name: 'version', kind: 'bool', inFile: false, help: 'print the version and exit' },
];

/** The flags a config file can set, by the field name of the KubeUserspaceProxyConfiguration. */
export function fileSettableFlags(): ReadonlyMap<string, FlagSpec> {
  return new Map(FLAGS.filter((f) => f.inFile !== false).map((f) => [camelCase(f.name), f]));
}

/** `udp-max-sessions` → `udpMaxSessions`; `assign-service-ips` → `assignServiceIPs`, `service-ip-pool` → `serviceIPPool` (Kubernetes spells IP in capitals). */
export function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()).replace(/Ip(?=s?(?:[A-Z]|$))/g, 'IP');
}

/**
 * A setting's value in a config file: the Config field named camelCase(flag) (durations from its
 * `…Ms` field), unless the flag says otherwise. A flag added later without a matching Config
 * field is caught by the round-trip test over every flag.
 */
export function fileValue(spec: FlagSpec, config: Config): unknown {
  if (spec.toFile) return spec.toFile(config);
  const fields = config as unknown as Record<string, unknown>;
  const key = camelCase(spec.name);
  if (spec.kind === 'duration') {
    const ms = fields[`${key}Ms`];
    return typeof ms === 'number' ? formatDuration(ms) : undefined;
  }
  return fields[key];
}
