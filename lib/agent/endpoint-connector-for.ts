import type { Config } from '../config/config.js';
import { logger } from '../log.js';
import type { EndpointConnector } from '../proxy/endpoint-connector.js';

const log = logger('main');

/**
 * The connector --dial-via asks for: undefined for direct (pod IPs), a PortForwardConnector for
 * port-forward, with the same kubeconfig as the service source (its own copy: the source's rate
 * limit on API requests must not delay connections).
 */
export async function endpointConnectorFor(config: Config): Promise<EndpointConnector | undefined> {
  if (config.dialVia === 'direct') return undefined;
  // Loaded only for this mode, as in serviceSourceFor: client-node is slow to import.
  const { loadKubeConfig } = await import('../source/kube-config.js');
  const { PortForwardConnector } = await import('../proxy/port-forward/port-forward-connector.js');
  const { kc, server } = loadKubeConfig({
    ...(config.kubeconfig !== undefined ? { kubeconfig: config.kubeconfig } : {}),
    ...(config.master !== undefined ? { master: config.master } : {}),
    ...(config.kubeContext !== undefined ? { context: config.kubeContext } : {}),
  });
  log.info('dialing endpoints through the API server', { dialVia: config.dialVia, server });
  return new PortForwardConnector({ kubeConfig: kc });
}
