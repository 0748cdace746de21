import diagnosticsChannel from 'node:diagnostics_channel';
import { InvalidConfigError } from '../errors.js';
import { logger } from '../log.js';
import type { AgentView } from './agent-view.js';
import { healthzReply, livezReply } from './healthz.js';
import { HttpListener } from './http-listener.js';
import type { Route } from './http-listener.js';
import { parseAddress } from '../net/parse-address.js';

/** kube-proxy's --healthz-bind-address default. */
export const DEFAULT_HEALTHZ_BIND_ADDRESS = '0.0.0.0:10256';

export interface HealthServerOptions {
  /** `HOST:PORT` (`[::]:10256` for IPv6); port 0 lets the kernel choose. */
  readonly address: string;
  readonly agent: AgentView;
}

const log = logger('healthz');

/** Published after every answer to /healthz and /livez: `{ agent, path, status }` (kube-proxy counts them by code). */
export const PROBE_CHANNEL = diagnosticsChannel.channel('kube-userspace-proxy:health-probe');

/** Publishes each answer of a route on PROBE_CHANNEL. */
function counted(agent: AgentView, path: string, route: Route): Route {
  return async (query) => {
    const reply = await route(query);
    if (PROBE_CHANNEL.hasSubscribers) PROBE_CHANNEL.publish({ agent, path, status: reply.status });
    return reply;
  };
}

/**
 * The health endpoint load balancers and kubelet probes use, on --healthz-bind-address:
 *
 * - `/healthz`: kube-proxy's JSON (`lastUpdated`, `currentTime`, `nodeEligible`); 200 when the
 *   last sync succeeded and is recent and this node is not being deleted, else 503 with a
 *   `reason` (see healthzReply). For readiness probes and load balancers.
 * - `/livez`: kube-proxy's JSON (`lastUpdated`, `currentTime`); 503 only when the sync loop is
 *   stuck (see livezReply). For liveness probes, which must not restart a proxy that is only
 *   waiting for its API server.
 */
export class HealthServer extends HttpListener {
  constructor(options: HealthServerOptions) {
    if (typeof options?.agent?.health !== 'function') throw new InvalidConfigError(['health server: agent must be an Agent']);
    const agent = options.agent;
    const routes = new Map<string, Route>([
      ['/healthz', () => healthzReply(agent)],
      ['/livez', () => livezReply(agent)],
    ]);
    for (const [path, route] of routes) routes.set(path, counted(agent, path, route));
    super('healthz', parseAddress(options.address, 'healthz bind address'), routes, log);
  }
}
