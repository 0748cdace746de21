import os from 'node:os';
import { DEFAULT_CONFIG } from '../config/config.js';
import type { Config } from '../config/config.js';
import { logger } from '../log.js';
import { ManifestSource } from '../source/manifest-source.js';
import { RequestRateLimiter } from '../source/request-rate-limiter.js';
import type { OwnListeners } from '../source/endpoint-address-filter.js';
import type { ServiceSource } from '../source/service-source.js';
import { ScopedServiceSource } from '../source/scoped-service-source.js';
import { serviceScopeOf } from './service-scope-of.js';

const log = logger('main');

/** kube-proxy's default --kube-api-content-type, which this client cannot speak. */
const KUBE_PROXY_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';

/**
 * The ServiceSource a configuration asks for: manifest files with --manifests; otherwise a
 * Kubernetes API server from --kubeconfig/--master, the in-cluster service account, $KUBECONFIG
 * or ~/.kube/config, in that order. Rejects with KubeConfigError when none of those exists.
 * ownListeners: this node's listeners, which endpoints from the API may not point at (see ownListenersOf).
 */
export async function serviceSourceFor(config: Config, ownListeners?: OwnListeners): Promise<ServiceSource> {
  const source = await unscopedSourceFor(config, ownListeners);
  const scope = serviceScopeOf(config);
  if (scope === undefined) return source;
  log.info('serving only some services', { namespaces: scope.namespaces.join(','), selector: scope.selector?.text ?? '' });
  return new ScopedServiceSource(source, scope);
}

async function unscopedSourceFor(config: Config, ownListeners?: OwnListeners): Promise<ServiceSource> {
  // As the Agent's: Local traffic policies, topology hints and the Node watched all mean this name.
  const nodeName = config.hostnameOverride ?? os.hostname().toLowerCase();
  if (config.manifests.length > 0) {
    log.info('service source', { source: 'manifests', paths: config.manifests.join(',') });
    const source = new ManifestSource({ paths: [...config.manifests], serviceProxyName: config.serviceProxyName, nodeName, nodeLabels: config.nodeLabels });
    // The files are read and parsed while the caller loads and starts the rest.
    source.preload();
    return source;
  }
  if (Object.keys(config.nodeLabels).length > 0) log.warn("ignored --node-labels: with the API, the Node object gives this node's labels", { node: nodeName });
  // Loaded only for this source: @kubernetes/client-node takes about a second to import, which
  // manifest mode (and --version, --help) should not pay.
  const { loadKubeConfig } = await import('../source/kube-config.js');
  const { KubeSource } = await import('../source/kube-source.js');
  const { UnreachableClusterIPWarning } = await import('../source/unreachable-cluster-ip-warning.js');
  const { kc, server, origin } = loadKubeConfig({
    ...(config.kubeconfig !== undefined ? { kubeconfig: config.kubeconfig } : {}),
    ...(config.master !== undefined ? { master: config.master } : {}),
    ...(config.kubeContext !== undefined ? { context: config.kubeContext } : {}),
  });
  log.info('service source', { source: 'kubernetes', server, config: origin, resource: config.useEndpoints ? 'endpoints' : 'endpointslices', qps: config.kubeApiQps, burst: config.kubeApiBurst });
  new RequestRateLimiter({ qps: config.kubeApiQps, burst: config.kubeApiBurst }).limit(kc);
  if (config.kubeApiContentType !== DEFAULT_CONFIG.kubeApiContentType && config.kubeApiContentType !== KUBE_PROXY_CONTENT_TYPE) {
    // Accepted, so a kube-proxy command line or file keeps working, but said once. kube-proxy's
    // own default is no news: a file kube-proxy wrote has it.
    log.warn('setting not applied', { setting: 'kube-api-content-type', value: config.kubeApiContentType, reason: 'the Kubernetes client speaks application/json only' });
  }
  return new KubeSource({
    kubeConfig: kc,
    useEndpoints: config.useEndpoints,
    serviceProxyName: config.serviceProxyName,
    configSyncPeriodMs: config.configSyncPeriodMs,
    onListError: UnreachableClusterIPWarning.for({ server, origin })?.observe,
    nodeName,
    refusedCidrs: config.refuseEndpointCidrs,
    ...(ownListeners ? { ownListeners } : {}),
  });
}
