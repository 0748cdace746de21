import type { Config } from '../config/config.js';
import { logger } from '../log.js';
import { ManifestSource } from '../source/manifest-source.js';
import type { OwnListener } from '../source/endpoint-address-filter.js';
import type { ServiceSource } from '../source/service-source.js';

const log = logger('main');

/**
 * The ServiceSource a configuration asks for: manifest files with --manifests; otherwise a
 * Kubernetes API server from --kubeconfig/--master, the in-cluster service account, $KUBECONFIG
 * or ~/.kube/config, in that order. Rejects with KubeConfigError when none of those exists.
 * ownListeners: this node's listeners, which endpoints from the API may not point at (see ownListenersOf).
 */
export async function serviceSourceFor(config: Config, ownListeners?: () => Iterable<OwnListener>): Promise<ServiceSource> {
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
  return new KubeSource({
    kubeConfig: kc,
    useEndpoints: config.useEndpoints,
    serviceProxyName: config.serviceProxyName,
    configSyncPeriodMs: config.configSyncPeriodMs,
    refusedCidrs: config.refuseEndpointCidrs,
    ...(ownListeners ? { ownListeners } : {}),
  });
}
