import { logger } from '../log.js';
import type { Endpoint } from '../model/endpoint.js';
import type { ServicePortName } from '../model/service-port-name.js';
import type { EndpointConnector } from '../proxy/endpoint-connector.js';

const log = logger('agent');

/** UDP ports warned about, at most this many remembered (then warned again). */
const MAX_WARNED = 10_000;

/**
 * What `--dial-via` (other than direct) changes in the agent: which service ports are served
 * (a connector carries TCP streams only: UDP ports are skipped, one warning each) and which
 * endpoints the balancer gets (only those the connector can reach).
 */
export class DialVia {
  readonly connector: EndpointConnector;
  readonly #warnedPorts = new Set<string>();

  constructor(connector: EndpointConnector) {
    this.connector = connector;
  }

  /** Whether a service port can be served through the connector; warns once per skipped port. */
  servesPort(spn: ServicePortName, protocol: string): boolean {
    if (protocol === 'TCP') return true;
    if (!this.#warnedPorts.has(spn)) {
      if (this.#warnedPorts.size >= MAX_WARNED) this.#warnedPorts.clear();
      this.#warnedPorts.add(spn);
      log.warn('skipped service port: cannot be reached through the dial-via mode', { service: spn, protocol, dialVia: this.connector.kind });
    }
    return false;
  }

  /** The endpoints the connector can reach (it warns once about each one it cannot). */
  usable(endpoints: Endpoint[], spn: ServicePortName): Endpoint[] {
    return endpoints.filter((e) => this.connector.usable(e, spn));
  }
}
