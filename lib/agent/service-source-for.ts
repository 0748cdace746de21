import type { Config } from '../config/config.js';
import { logger } from '../log.js';
import { KubeSource } from '../source/kube-source.js';
import { loadKubeConfig } from '../source/kube-config.js';
import { ManifestSource } from '../source/manifest-source.js';
import type { ServiceSource } from '../source/service-source.js';

const log = logger('main');

/**
 * The ServiceSource a configuration asks for: manifest files with --manifests; otherwise a
 * Kubernetes API server from --kubeconfig/--master, the in-cluster service account, $KUBECONFIG
 * or ~/.kube/config, in that order. Throws KubeConfigError when none of those exists.
 */
export function serviceSourceFor(config: Config): ServiceSource {
  if (config.manifests.length > 0) {
    log.info('service source', { source: 'manifests', paths: config.manifests.join(',') });
    return new ManifestSource({ paths: [...config.manifests] });
  }
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
  });
}
