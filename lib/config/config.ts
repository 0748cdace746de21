import type { LogFormat, LogLevel } from '../log.js';
import type { PortRange } from './port-range.js';

export type RedirectMode = 'none' | 'iptables' | 'nftables' | 'auto';
export type DnsUpstream = 'forward' | 'refuse';

/** How endpoints are reached: a TCP connection to the pod IP, or the API server's pods/portforward. */
export type DialVia = 'direct' | 'port-forward';

/** The validated, frozen configuration of one agent run. */
export interface Config {
  readonly manifests: readonly string[];
  /** Kubernetes API source: --kubeconfig and --master (either selects it). */
  readonly kubeconfig: string | undefined;
  readonly master: string | undefined;
  /** --context: the kubeconfig context to use in place of its current-context. */
  readonly kubeContext: string | undefined;
  /** Watch v1 Endpoints instead of EndpointSlices (clusters older than 1.21). */
  readonly useEndpoints: boolean;
  /** Serve services labelled service.kubernetes.io/service-proxy-name with this value ('' = unlabelled only). */
  readonly serviceProxyName: string;
  /** Longest time the API watch may stay silent before a re-list. */
  readonly configSyncPeriodMs: number;
  /** --kube-api-qps and --kube-api-burst: the API client's request rate limit (token bucket). */
  readonly kubeApiQps: number;
  readonly kubeApiBurst: number;
  /** --kube-api-content-type: what the API client asks for; it speaks only JSON. */
  readonly kubeApiContentType: string;
  /** This node's name, for Local traffic policies (default: the host name). */
  readonly hostnameOverride: string | undefined;
  /** --node-labels: this node's labels in manifest mode (its zone, for topology-aware routing); {} when not given. */
  readonly nodeLabels: Readonly<Record<string, string>>;
  /** --dial-via: how endpoints are reached (port-forward only with the API as the source). */
  readonly dialVia: DialVia;
  /** --namespace: serve only Services in these namespaces; empty means every namespace. */
  readonly namespaces: readonly string[];
  /** --selector: serve only Services this label selector matches ('' = every Service). */
  readonly selector: string;
  /** Address listeners bind to when a service has no local portal address. */
  readonly bindAddress: string;
  readonly proxyPortRange: PortRange | undefined;
  readonly udpTimeoutMs: number;
  /** Most UDP sessions per service port; 0 = derived from the open-file limit at start (see DescriptorBudget). */
  readonly udpMaxSessions: number;
  /** --tcp-idle-timeout: a TCP connection with no byte either way for this long is closed; 0 = never. */
  readonly tcpIdleTimeoutMs: number;
  /** Processes serving connections, this one included (--workers; 'auto' is one per CPU). */
  readonly workers: number;
  readonly redirect: RedirectMode;
  /** --assign-service-ips: the interface service IPs are added to (none mode), or undefined. */
  readonly assignServiceIPs: string | undefined;
  /** --nodeport-addresses: CIDRs whose local addresses serve NodePorts; empty means every address. */
  readonly nodePortAddresses: readonly string[];
  /** --refuse-endpoint-cidrs: endpoint addresses never proxied to, beside the built-in metadata, loopback and link-local ones. */
  readonly refuseEndpointCidrs: readonly string[];
  /** --service-ip-pool: the loopback CIDR services get their address from (none mode), or undefined. */
  readonly serviceIPPool: string | undefined;
  /** --hosts-file: the hosts file that gets a block of service names, or undefined. */
  readonly hostsFile: string | undefined;
  /** --cluster-domain: the DNS zone of service names (`svc.ns.svc.<zone>`), without a trailing dot. */
  readonly clusterDomain: string;
  /** --cleanup: remove leftovers of earlier runs and exit. */
  readonly cleanup: boolean;
  /** The longest time between two syncs. */
  readonly syncPeriodMs: number;
  /** The shortest time between syncs beyond a burst of two. */
  readonly minSyncPeriodMs: number;
  /** How long SIGTERM waits for established connections before closing them. */
  readonly shutdownGracePeriodMs: number;
  /** --oom-score-adj: written to /proc/self/oom_score_adj at start (kube-proxy's value by default). */
  readonly oomScoreAdj: number;
  /** HOST:PORT of the health server ('' = off). */
  readonly healthzBindAddress: string;
  /** HOST:PORT of the metrics server ('' = off). */
  readonly metricsBindAddress: string;
  /** HOST:PORT of the DNS server ('' = off). */
  readonly dnsBindAddress: string;
  /** TTL of DNS answers (whole seconds, in ms as every duration here). */
  readonly dnsTtlMs: number;
  /** Names outside the cluster domain: forwarded to the system's name servers, or refused. */
  readonly dnsUpstream: DnsUpstream;
  /** The resolver configuration forwarding reads its name servers from. */
  readonly resolvConf: string;
  /** --dry-run: print the rules that would be installed and exit. */
  readonly dryRun: boolean;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
}

export const DEFAULT_CONFIG: Config = Object.freeze({
  manifests: [],
  kubeconfig: undefined,
  master: undefined,
  kubeContext: undefined,
  useEndpoints: false,
  serviceProxyName: '',
  configSyncPeriodMs: 15 * 60_000,
  kubeApiQps: 5,
  kubeApiBurst: 10,
  kubeApiContentType: 'application/json',
  hostnameOverride: undefined,
  nodeLabels: Object.freeze({}),
  dialVia: 'direct',
  namespaces: Object.freeze([]),
  selector: '',
  bindAddress: '0.0.0.0',
  proxyPortRange: undefined,
  udpTimeoutMs: 30_000,
  udpMaxSessions: 0,
  // As kube-proxy's conntrack tcp-timeout-established (24 h): no client that works through
  // kube-proxy's iptables or IPVS modes relies on a longer silence, and an abandoned connection
  // (a peer that vanished without FIN or RST) gives its descriptors back within a day.
  tcpIdleTimeoutMs: 24 * 3_600_000,
  workers: 1,
  redirect: 'none',
  assignServiceIPs: undefined,
  nodePortAddresses: [],
  refuseEndpointCidrs: [],
  serviceIPPool: undefined,
  hostsFile: undefined,
  clusterDomain: 'cluster.local',
  cleanup: false,
  syncPeriodMs: 30_000,
  minSyncPeriodMs: 1_000,
  shutdownGracePeriodMs: 30_000,
  // kube-proxy's (qos.KubeProxyOOMScoreAdj): the kernel kills nearly anything else on the node
  // before the process every Service on the node depends on.
  oomScoreAdj: -999,
  healthzBindAddress: '0.0.0.0:10256',
  metricsBindAddress: '127.0.0.1:10249',
  dnsBindAddress: '',
  // CoreDNS's kubernetes plugin answers with 5 s unless told otherwise.
  dnsTtlMs: 5_000,
  dnsUpstream: 'forward',
  resolvConf: '/etc/resolv.conf',
  dryRun: false,
  logLevel: 'info',
  logFormat: 'text',
});
