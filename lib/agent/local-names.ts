import type { Config } from '../config/config.js';
import { InvalidConfigError } from '../errors.js';
import { parseServiceIPPool } from '../config/service-ip-pool-cidr.js';
import { logger } from '../log.js';
import { HostsFile } from '../names/hosts-file.js';
import type { ServiceSource } from '../source/service-source.js';
import { HostsFileSource } from './hosts-file-source.js';
import { PooledServiceSource } from './pooled-service-source.js';
import { ServiceIPPool } from './service-ip-pool.js';

const log = logger('main');

/**
 * The source with --service-ip-pool and --hosts-file applied, in that order: the hosts block
 * publishes the addresses the pool gave. Unchanged when neither is set.
 */
export function withLocalNames(source: ServiceSource, config: Pick<Config, 'serviceIPPool' | 'hostsFile' | 'clusterDomain' | 'redirect' | 'assignServiceIPs'>): ServiceSource {
  let out = source;
  if (config.serviceIPPool !== undefined) {
    const range = parseServiceIPPool(config.serviceIPPool);
    if (typeof range === 'string') throw new InvalidConfigError([`--service-ip-pool: ${range}`]);
    out = new PooledServiceSource(out, new ServiceIPPool(range));
  }
  if (config.hostsFile !== undefined && config.serviceIPPool === undefined && config.redirect === 'none' && config.assignServiceIPs === undefined) {
    // The names are written all the same: loopback ClusterIPs in manifests do work.
    log.warn('hosts file names point at ClusterIPs', { reason: 'with --redirect none a ClusterIP is listened on only if this machine has it; --service-ip-pool gives every service a local address' });
  }
  if (config.hostsFile !== undefined) out = new HostsFileSource(out, new HostsFile({ path: config.hostsFile }), config.clusterDomain);
  return out;
}
