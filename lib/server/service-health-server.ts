import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClosedError } from '../errors.js';
import { formatHostPort } from '../net/host-port.js';
import { logger } from '../log.js';
import { listenError } from '../net/listen-error.js';
import { whenBound } from '../net/when-bound.js';
import type { Reply } from './http-listener.js';

/** What a service health check reports, read at every request. */
export interface ServiceHealth {
  /** Ready endpoints of the service on this node. */
  readonly localEndpoints: number;
  /** The proxy's own health: a node whose proxy is broken must not receive traffic either. */
  readonly serviceProxyHealthy: boolean;
}

export interface ServiceHealthServerOptions {
  readonly namespace: string;
  readonly name: string;
  /** The Service's healthCheckNodePort. */
  readonly port: number;
  /** Node IPs to listen on (--nodeport-addresses); undefined: every address of both families. */
  readonly hosts: readonly string[] | undefined;
  readonly health: () => ServiceHealth;
}

const log = logger('service-health');

function ignore(): void {}

/**
 * kube-proxy's answer on a health check node port: 200 when this node has local ready endpoints
 * and the proxy is healthy, else 503; the same JSON text (tab-indented, no trailing newline) and
 * headers, whatever the path and method, so that cloud load balancers configured for kube-proxy
 * read it unchanged.
 */
export function serviceHealthReply(namespace: string, name: string, health: ServiceHealth): Reply {
  const body = { service: { namespace, name }, localEndpoints: health.localEndpoints, serviceProxyHealthy: health.serviceProxyHealthy };
  return {
    status: health.localEndpoints > 0 && health.serviceProxyHealthy ? 200 : 503,
    contentType: 'application/json',
    body: JSON.stringify(body, null, '\t'),
  };
}

/**
 * The health check of one Service: an HTTP listener on its healthCheckNodePort, on every node
 * address or on each --nodeport-addresses IP, as kube-proxy's service health server opens one.
 * start() binds every address or none (what it opened is closed again when one fails, so that a
 * retry starts clean); close() is graceful and idempotent, destroy() also drops connections.
 */
export class ServiceHealthServer {
  readonly namespace: string;
  readonly name: string;
  readonly port: number;
  readonly hosts: readonly string[] | undefined;
  readonly #health: () => ServiceHealth;
  readonly #servers: http.Server[] = [];
  #starting: Promise<void> | undefined;
  /** True while start() is binding. */
  #binding = false;
  #closing: Promise<void> | undefined;
  #destroyed = false;

  constructor(options: ServiceHealthServerOptions) {
    this.namespace = options.namespace;
    this.name = options.name;
    this.port = options.port;
    this.hosts = options.hosts;
    this.#health = options.health;
  }

  start(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new ClosedError('service health check'));
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.#binding = true;
    try {
      await this.#bindAll();
    } finally {
      this.#binding = false;
    }
  }

  async #bindAll(): Promise<void> {
    // No host: Node.js binds '::' dual-stack, or 0.0.0.0 where IPv6 is off, which is kube-proxy's
    // "every node address" of both families.
    for (const host of this.hosts ?? [undefined]) {
      const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, this.#onRequest);
      try {
        await whenBound(server, (bound) => server.listen({ host, port: this.port }, bound));
      } catch (err) {
        for (const s of this.#servers) s.close();
        this.#servers.length = 0;
        this.#starting = undefined;
        throw listenError(host ?? '0.0.0.0', this.port, err);
      }
      server.on('error', (err) => log.warn('server error', { service: `${this.namespace}/${this.name}`, error: err.message }));
      this.#servers.push(server);
      // close() during the binds waits for them, then closes what they opened.
      if (this.#closing !== undefined) throw new ClosedError('service health check');
    }
  }

  /** The bound addresses, `host:port`. */
  addresses(): string[] {
    return this.#servers.flatMap((s) => {
      const a = s.address() as AddressInfo | null;
      return a === null ? [] : [formatHostPort(a.address, a.port)];
    });
  }

  /**
   * Stops accepting; requests in progress finish, idle keep-alive connections are closed.
   * Idempotent. Unless a start() is still binding, the port is released before this returns, so
   * that another listener may bind it at once.
   */
  close(): Promise<void> {
    this.#closing ??= this.#binding ? this.#starting!.catch(ignore).then(() => this.#closeServers()) : this.#closeServers();
    return this.#closing;
  }

  #closeServers(): Promise<void> {
    return Promise.all(
      this.#servers.map((server) => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        if (this.#destroyed) server.closeAllConnections();
        else server.closeIdleConnections();
        return closed;
      }),
    ).then(ignore);
  }

  /** Closes at once, open connections included. Idempotent. */
  destroy(): void {
    this.#destroyed = true;
    void this.close();
    for (const server of this.#servers) server.closeAllConnections();
  }

  readonly #onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.on('error', ignore);
    req.resume();
    if (this.#closing !== undefined) {
      // A health checker must not keep a connection to a check that is going away.
      res.setHeader('Connection', 'close');
      res.once('finish', () => setImmediate(() => this.#servers.forEach((s) => s.closeIdleConnections())));
    }
    let reply: Reply;
    try {
      reply = serviceHealthReply(this.namespace, this.name, this.#health());
    } catch (err) {
      log.error('health check failed', { service: `${this.namespace}/${this.name}`, error: (err as Error).message });
      reply = { status: 500, contentType: 'text/plain; charset=utf-8', body: 'internal error\n' };
    }
    const body = Buffer.from(reply.body);
    res.writeHead(reply.status, { 'Content-Type': reply.contentType, 'Content-Length': body.length, 'X-Content-Type-Options': 'nosniff' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
