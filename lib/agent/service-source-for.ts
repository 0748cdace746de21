import { DEFAULT_CONFIG } from '../config/config.js';
import type { Config } from '../config/config.js';
import { logger } from '../log.js';
import { ManifestSource } from '../source/manifest-source.js';
import type { ServiceSource } from '../source/service-source.js';

const log = logger('main');

/**
 * The ServiceSource a configuration asks for: manifest files with --manifests; otherwise a
 * Kubernetes API server from --kubeconfig/--master, the in-cluster service account, $KUBECONFIG
 * or ~/.kube/config, in that order. Rejects with KubeConfigError when none of those exists.
 */
export async function serviceSourceFor(config: Config): Promise<ServiceSource> {
  if (config.manifests.length > 0) {
    log.info('service source', { source: 'manifests', paths: config.manifests.join(',') });
    return new ManifestSource({ paths: [...config.manifests] });
  }
  // Loaded only for this source: @kubernetes/client-node takes about a second to import, which
  // manifest mode (and --version, --help) should not pay.
  const { loadKubeConfig } = await import('../source/kube-config.js');
  const { KubeSource } = await import('../source/kube-source.js');
  const { kc, server, origin } = loadKubeConfig({
    ...(config.kubeconfig !== undefined ? { kubeconfig: config.kubeconfig } : {}),
    ...(config.master !== undefined ? { master: config.master } : {}),
  });
  log.info('service source', { source: 'kubernetes', server, config: origin, resource: config.useEndpoints ? 'endpoints' : 'endpointslices' });
  warnClientSettings(config);
  return new KubeSource({
    kubeConfig: kc,
    useEndpoints: config.useEndpoints,
    serviceProxyName: config.serviceProxyName,
    configSyncPeriodMs: config.configSyncPeriodMs,
  });
}

/**
 * kube-proxy's client settings that @kubernetes/client-node (2.0.1) cannot take: it has no
 * request rate limiter, and it encodes and decodes JSON only. Accepted, so a kube-proxy command
 * line or file keeps working, with one warning each when set to something else than what the
 * client does anyway.
 */
function warnClientSettings(config: Config): void {
  if (config.kubeApiQps !== DEFAULT_CONFIG.kubeApiQps) log.warn('setting not applied', { setting: 'kube-api-qps', value: config.kubeApiQps, reason: 'the Kubernetes client has no request rate limiter' });
  if (config.kubeApiBurst !== DEFAULT_CONFIG.kubeApiBurst) log.warn('setting not applied', { setting: 'kube-api-burst', value: config.kubeApiBurst, reason: 'the Kubernetes client has no request rate limiter' });
  if (config.kubeApiContentType !== DEFAULT_CONFIG.kubeApiContentType) log.warn('setting not applied', { setting: 'kube-api-content-type', value: config.kubeApiContentType, reason: 'the Kubernetes client speaks application/json only' });
}
