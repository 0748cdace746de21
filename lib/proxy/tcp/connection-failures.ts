import type { Logger } from '../../log.js';
import type { ProxySocketKey } from '../../model/service-port-name.js';
import { isLocalResourceError } from '../descriptor-budget.js';
import { LogThrottle } from '../log-throttle.js';
import type { ProxyStats } from '../proxy-stats.js';
import { clientIPOf, clientPeer } from './accepted-client.js';
import type { AcceptedClient } from './accepted-client.js';
import type { DialOutcome } from './dialer.js';

/** Lines about running out of local resources: at most one per this interval per port, with a count. */
export const LOCAL_RESOURCE_LOG_INTERVAL_MS = 5000;

/**
 * The connections of one TCP service port that are not proxied (no endpoint, every dial failed,
 * out of local resources) and its accept errors: each is counted and logged. They come in floods
 * when an endpoint set is dead or the process is out of descriptors, so the warnings are throttled
 * per port, with the count of lines held back.
 */
export class ConnectionFailures {
  readonly #spn: ProxySocketKey;
  readonly #stats: ProxyStats;
  readonly #log: Logger;
  #giveUpLog: LogThrottle | undefined;
  #acceptErrorLog: LogThrottle | undefined;
  #localResourceLog: LogThrottle | undefined;

  constructor(spn: ProxySocketKey, stats: ProxyStats, log: Logger) {
    this.#spn = spn;
    this.#stats = stats;
    this.#log = log;
  }

  /**
   * The dial did not connect: the client gets a RST, and the reason is counted and logged. ip: the
   * client's address if read at accept, else ''.
   */
  dialFailed(outcome: Exclude<DialOutcome<unknown>, { kind: 'connected' }>, ip: string, client: AcceptedClient, resetClient: () => void): void {
    if (outcome.kind === 'no-endpoint') {
      this.rejectNoEndpoint(ip, resetClient);
      return;
    }
    if (outcome.kind === 'local-error') {
      // Counted by the dialer; the endpoint is not to blame and was not backed off.
      resetClient();
      this.localResource('cannot open a connection to an endpoint: out of local resources', outcome.reason, { endpoint: outcome.endpoint.key });
      return;
    }
    this.#stats.dialGiveUps++;
    const suppressed = (this.#giveUpLog ??= new LogThrottle(1000)).take();
    // Read before the reset: the address is gone with the connection.
    const address = suppressed >= 0 && ip === '' ? clientIPOf(client) : ip;
    // A RST rather than a FIN: the client must not mistake "no endpoint answered" for an empty reply.
    resetClient();
    if (suppressed >= 0) {
      this.#log.warn('failed to connect to an endpoint', {
        service: this.#spn,
        client: address,
        lastEndpoint: outcome.endpoint.key,
        attempts: outcome.attempts,
        reason: outcome.reason,
        suppressed,
      });
    }
  }

  /**
   * Normally the kernel refuses connections to a port without endpoints (a reject rule, or no
   * listener in `--redirect none`); a connection lands here only in the moment before the rules or
   * listeners follow an endpoint change. A RST, not a FIN: to the client as close to "refused" as an
   * accepted connection can be, and never mistaken for an empty reply.
   */
  rejectNoEndpoint(client: AcceptedClient | string, resetClient: () => void): void {
    this.#stats.noEndpointRejections++;
    if (this.#log.isDebugEnabled()) this.#log.debug('no endpoint, resetting connection', { service: this.#spn, client: typeof client === 'string' ? client : clientPeer(client)?.address });
    resetClient();
  }

  /** One warning per interval for the whole port, with how many occurrences it stands for. */
  localResource(message: string, code: string, fields: Record<string, unknown>): void {
    const suppressed = (this.#localResourceLog ??= new LogThrottle(LOCAL_RESOURCE_LOG_INTERVAL_MS)).take();
    if (suppressed >= 0) this.#log.warn(message, { service: this.#spn, code, ...fields, localResourceErrors: this.#stats.localResourceErrors, suppressed });
  }

  /** An accept error (a net.Server's 'error', or one reported with a handle). */
  acceptError(err: NodeJS.ErrnoException): void {
    // EMFILE and friends: libuv keeps listening, so this is logged, not fatal (the legacy
    // proxier panicked here). Out of descriptors, libuv accepts and closes the pending
    // connections with a reserve descriptor (so clients get an immediate close rather than a
    // hang) and reports one error for the lot: counted here, as one local resource error.
    if (isLocalResourceError(err.code)) {
      this.#stats.localResourceErrors++;
      this.localResource('accept failed: out of local resources, pending connections closed', err.code as string, {});
      return;
    }
    const suppressed = (this.#acceptErrorLog ??= new LogThrottle(1000)).take();
    if (suppressed >= 0) this.#log.warn('accept failed', { service: this.#spn, code: err.code, error: err, suppressed });
  }
}
