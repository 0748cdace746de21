import type { Config } from '../config/config.js';
import { InvalidConfigError } from '../errors.js';
import { parseServiceIPPool } from '../config/service-ip-pool-cidr.js';
import { HostsFile } from '../names/hosts-file.js';
import type { ServiceSource } from '../source/service-source.js';
import { HostsFileSource } from './hosts-file-source.js';
import { PooledServiceSource } from './pooled-service-source.js';
import { ServiceIPPool } from './service-ip-pool.js';

/**
 * The source with --service-ip-pool and --hosts-file applied, in that order: the hosts block
 * publishes the addresses the pool gave. Unchanged when neither is set.
 */
export function withLocalNames(source: ServiceSource, config: Pick<Config, 'serviceIPPool' | 'hostsFile' | 'clusterDomain'>): ServiceSource {
  let out = source;
  if (config.serviceIPPool !== undefined) {
    const range = parseServiceIPPool(config.serviceIPPool);
    if (typeof range === 'string') throw new InvalidConfigError([`--service-ip-pool: ${range}`]);
    out = new PooledServiceSource(out, new ServiceIPPool(range));
  }
  if (config.hostsFile !== undefined) out = new HostsFileSource(out, new HostsFile({ path: config.hostsFile }), config.clusterDomain);
  return out;
}
