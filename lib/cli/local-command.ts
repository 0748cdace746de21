import { InvalidConfigError } from '../errors.js';
import { parseArgv } from '../config/argv.js';

/** The pool `local` gives addresses from: inside 127.0.0.0/8, so listening there needs no root on Linux. */
export const LOCAL_SERVICE_IP_POOL = '127.1.0.0/16';
/**
 * `local`'s DNS address. Above 1023, so no root (or CAP_NET_BIND_SERVICE) is needed; clear of
 * mDNS's 5353 and of 53, where systemd-resolved's stub or a laptop's dnsmasq already listens.
 */
export const LOCAL_DNS_BIND_ADDRESS = '127.0.0.1:1053';
/** The health and metrics servers on loopback: a laptop should not offer them to its networks. */
export const LOCAL_HEALTHZ_BIND_ADDRESS = '127.0.0.1:10256';
export const LOCAL_METRICS_BIND_ADDRESS = '127.0.0.1:10249';
export const LOCAL_HOSTS_FILE = '/etc/hosts';

export interface LocalEnvironment {
  /** Root may write /etc/hosts; anyone else gets the DNS server only. */
  readonly isRoot: boolean;
}

export interface LocalPlan {
  /** The agent's argv: the defaults of `local` for every setting the command line leaves out, then the command line. */
  readonly argv: readonly string[];
  /** Where the Services come from: manifests, or a cluster (whose endpoints are reached by port-forward). */
  readonly source: 'manifests' | 'cluster';
  /** Whether the names go into /etc/hosts (or the file --hosts-file named). */
  readonly hostsFile: string | undefined;
}

/**
 * `kube-userspace-proxy local [flags]` as the agent's own flags: a pure function of argv.
 *
 * Every setting the command line gives wins; the others get local testing's defaults: a loopback
 * pool address per Service (--service-ip-pool), the DNS server on an unprivileged port, --redirect
 * none, port-forward dialing when the Services come from a cluster, health and metrics on
 * loopback, and /etc/hosts only for root. A choice that cannot work with the rest (a rules
 * mode, ClusterIPs on an interface, port-forward without an API server) is refused with one line
 * per problem rather than quietly dropped.
 */
export function localArgv(argv: readonly string[], env: LocalEnvironment): LocalPlan {
  // Only the names matter here: malformed values are the agent's parser's to report, with usage.
  const given = parseArgv(argv).values;
  const has = (name: string): boolean => given.has(name);
  const value = (name: string): string | undefined => given.get(name)?.values[0];
  const problems: string[] = [];

  const source = has('manifests') ? 'manifests' : 'cluster';
  const redirect = value('redirect');
  if (redirect !== undefined && redirect !== 'none') {
    problems.push(`local: --redirect ${redirect} cannot be combined with local: it listens on a pool address per Service (--redirect none); run the agent without "local" for the rules modes`);
  }
  if (has('assign-service-ips')) {
    problems.push(
      'local: --assign-service-ips cannot be combined with local: it gives each Service a loopback pool address instead of adding ClusterIPs (root) to an interface; run the agent without "local" for that',
    );
  }
  if (source === 'manifests' && value('dial-via') === 'port-forward') {
    problems.push('local: --dial-via port-forward needs a cluster (--kubeconfig or --context), not --manifests');
  }
  if (has('manifests') && (has('kubeconfig') || has('context') || has('master'))) {
    problems.push(`local: --manifests cannot be combined with ${has('kubeconfig') ? '--kubeconfig' : has('context') ? '--context' : '--master'}: choose manifests or a cluster`);
  }
  if (value('service-ip-pool') === '') problems.push('local: --service-ip-pool cannot be empty: local gives every Service a pool address (default ' + LOCAL_SERVICE_IP_POOL + ')');
  if (problems.length > 0) throw new InvalidConfigError(problems);

  const defaults: string[] = [];
  const orDefault = (name: string, v: string): void => {
    if (!has(name)) defaults.push(`--${name}=${v}`);
  };
  orDefault('redirect', 'none');
  orDefault('service-ip-pool', LOCAL_SERVICE_IP_POOL);
  orDefault('dns-bind-address', LOCAL_DNS_BIND_ADDRESS);
  if (source === 'cluster') orDefault('dial-via', 'port-forward');
  orDefault('healthz-bind-address', LOCAL_HEALTHZ_BIND_ADDRESS);
  orDefault('metrics-bind-address', LOCAL_METRICS_BIND_ADDRESS);
  if (env.isRoot) orDefault('hosts-file', LOCAL_HOSTS_FILE);
  const hostsFile = value('hosts-file') ?? (env.isRoot ? LOCAL_HOSTS_FILE : undefined);
  return { argv: [...defaults, ...argv], source, hostsFile: hostsFile === '' ? undefined : hostsFile };
}
