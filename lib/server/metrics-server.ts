import { InvalidConfigError } from '../errors.js';
import { logger } from '../log.js';
import type { AgentView } from './agent-view.js';
import { healthzReply } from './healthz.js';
import { HttpListener } from './http-listener.js';
import type { Route } from './http-listener.js';
import type { Metrics } from './metrics.js';
import { parseAddress } from '../net/parse-address.js';
import { statusDocument } from './status-document.js';
import { STATUS_PAGE_CSP, statusPage } from './status-page.js';

/** kube-proxy's --metrics-bind-address default: loopback only, since /status names every service. */
export const DEFAULT_METRICS_BIND_ADDRESS = '127.0.0.1:10249';

export interface MetricsServerOptions {
  /** `HOST:PORT` (`[::1]:10249` for IPv6); port 0 lets the kernel choose. */
  readonly address: string;
  readonly agent: AgentView;
  readonly metrics: Metrics;
}

const log = logger('metrics');

/** The rules of one service port for the live page; a configuration the backend cannot render shows as its reason. */
function rulesOf(agent: AgentView, servicePort: string): string | undefined {
  try {
    return agent.renderRules?.(servicePort);
  } catch (err) {
    return `# cannot render the rules: ${(err as Error).message}`;
  }
}

/**
 * The metrics endpoint on --metrics-bind-address, as kube-proxy's:
 *
 * - `/metrics`: Prometheus text format (see Metrics).
 * - `/proxyMode`: `userspace`, as kube-proxy answered in this mode.
 * - `/healthz`: the same answer as the health server's.
 * - `/status`: the agent's service ports, endpoints and counters as JSON, for
 *   `kube-userspace-proxy status` and scripts.
 * - `/`: the live page, /status as an HTML table that its script refreshes every second, and with
 *   `?service=ns/name:port` the path a packet to that service port takes (see statusPage).
 */
export class MetricsServer extends HttpListener {
  constructor(options: MetricsServerOptions) {
    const problems: string[] = [];
    if (typeof options?.agent?.status !== 'function') problems.push('metrics server: agent must be an Agent');
    if (typeof options?.metrics?.render !== 'function') problems.push('metrics server: metrics must be a Metrics');
    if (problems.length > 0) throw new InvalidConfigError(problems);
    const { agent, metrics } = options;
    const routes = new Map<string, Route>([
      [
        '/',
        async (query) => {
          await agent.refreshStats?.();
          const service = query.get('service') ?? undefined;
          const page = statusPage(statusDocument(agent), {
            service,
            rules: service === undefined ? undefined : rulesOf(agent, service),
            page: Number(query.get('page') ?? 1),
          });
          return { status: page.status, contentType: 'text/html; charset=utf-8', body: page.html, headers: { 'Content-Security-Policy': STATUS_PAGE_CSP, 'Cache-Control': 'no-store' } };
        },
      ],
      ['/metrics', async () => ({ status: 200, contentType: metrics.contentType, body: await metrics.render() })],
      ['/proxyMode', () => ({ status: 200, contentType: 'text/plain; charset=utf-8', body: 'userspace' })],
      ['/healthz', () => healthzReply(agent)],
      [
        '/status',
        async () => {
          await agent.refreshStats?.();
          return { status: 200, contentType: 'application/json', body: `${JSON.stringify(statusDocument(agent), null, 2)}\n` };
        },
      ],
    ]);
    super('metrics', parseAddress(options.address, 'metrics bind address'), routes, log);
  }
}
