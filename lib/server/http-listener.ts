import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClosedError } from '../errors.js';
import type { Logger } from '../log.js';
import { listenError } from '../net/listen-error.js';
import type { HostPort } from '../net/host-port.js';

/** What a route answers. */
export interface Reply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  /** More response headers (a Content-Security-Policy, say). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Answers one path (GET and HEAD), given the query string. Called per request; may be async (a metrics scrape). */
export type Route = (query: URLSearchParams) => Reply | Promise<Reply>;

function ignore(): void {}

/**
 * A small HTTP server for a fixed set of GET paths, with the lifecycle of the project's parts:
 * start() binds (rejecting with PortConflictError or ListenError), close() is graceful and
 * idempotent (requests already in progress finish; new ones get 503 and `Connection: close`),
 * destroy() also drops open connections. After close, start() rejects with ClosedError.
 */
export class HttpListener {
  readonly #name: string;
  readonly #address: HostPort;
  readonly #routes: ReadonlyMap<string, Route>;
  readonly #log: Logger;
  readonly #server: http.Server;
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #destroyed = false;

  constructor(name: string, address: HostPort, routes: ReadonlyMap<string, Route>, log: Logger) {
    this.#name = name;
    this.#address = address;
    this.#routes = routes;
    this.#log = log;
    // Short timeouts: only health checkers and scrapers talk to this, never a slow human.
    this.#server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, this.#onRequest);
  }

  start(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new ClosedError(`${this.#name} server`));
    this.#starting ??= new Promise<void>((resolve, reject) => {
      const server = this.#server;
      const { host, port } = this.#address;
      const onListening = (): void => {
        server.removeListener('error', onError);
        // close() during the bind waits for it, then closes what it opened.
        if (this.#closing !== undefined) {
          reject(new ClosedError(`${this.#name} server`));
          return;
        }
        server.on('error', (err) => this.#log.warn('server error', { server: this.#name, error: err }));
        this.#log.info('serving', { server: this.#name, address: this.url() });
        resolve();
      };
      const onError = (err: Error): void => {
        // A failed start opened nothing, so it may be retried.
        server.removeListener('listening', onListening);
        this.#starting = undefined;
        reject(listenError(host, port, err));
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ host, port });
    });
    return this.#starting;
  }

  /** The bound address (with the kernel's port when 0 was asked); undefined when not listening. */
  address(): { host: string; port: number } | undefined {
    const a = this.#server.address() as AddressInfo | null;
    return a === null ? undefined : { host: a.address, port: a.port };
  }

  /** `http://host:port` of the bound address, for logs and tests. */
  url(): string | undefined {
    const a = this.address();
    if (a === undefined) return undefined;
    return `http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  }

  /** Stops accepting; requests in progress finish, idle keep-alive connections are closed. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#starting?.catch(ignore);
    const server = this.#server;
    if (!server.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.#destroyed) server.closeAllConnections();
    else server.closeIdleConnections();
    this.#log.info('closed', { server: this.#name });
    await closed;
  }

  /** Closes at once, open connections included. Idempotent. */
  destroy(): void {
    this.#destroyed = true;
    void this.close();
    this.#server.closeAllConnections();
  }

  readonly #onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.on('error', ignore);
    // A response finishing after close() began leaves an idle connection that would hold the
    // server open until its keep-alive timeout.
    res.once('finish', () => {
      if (this.#closing !== undefined) setImmediate(() => this.#server.closeIdleConnections());
    });
    if (this.#closing !== undefined) {
      res.setHeader('Connection', 'close');
      send(req, res, { status: 503, contentType: 'text/plain; charset=utf-8', body: 'shutting down\n' });
      return;
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const route = this.#routes.get(path);
    if (route === undefined) {
      send(req, res, { status: 404, contentType: 'text/plain; charset=utf-8', body: '404 page not found\n' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(req, res, { status: 405, contentType: 'text/plain; charset=utf-8', body: 'method not allowed\n' });
      return;
    }
    let reply: Reply | Promise<Reply>;
    try {
      reply = route(new URLSearchParams(q < 0 ? '' : url.slice(q + 1)));
    } catch (err) {
      reply = Promise.reject(err);
    }
    Promise.resolve(reply).then(
      (r) => send(req, res, r),
      (err: unknown) => {
        this.#log.error('request failed', { server: this.#name, path, error: err as Error });
        send(req, res, { status: 500, contentType: 'text/plain; charset=utf-8', body: 'internal error\n' });
      },
    );
  };
}

function send(req: http.IncomingMessage, res: http.ServerResponse, reply: Reply): void {
  if (res.headersSent || res.destroyed) return;
  const body = Buffer.from(reply.body);
  res.writeHead(reply.status, {
    'Content-Type': reply.contentType,
    'Content-Length': body.length,
    'X-Content-Type-Options': 'nosniff',
    ...reply.headers,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
