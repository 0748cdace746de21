import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PodPortForwards } from './pod-port-forward.js';

/**
 * A Kubernetes API server for tests that speaks the real wire protocol for the resources the
 * proxy watches (Services, EndpointSlices, Endpoints, and the cluster-scoped Nodes), so that the real @kubernetes/client-node informers run against it unchanged:
 *
 * - `GET <path>` → `{kind: 'ServiceList', apiVersion, metadata: {resourceVersion}, items}`, items
 *   without kind/apiVersion (as real servers send them);
 * - `GET <path>?watch=true&resourceVersion=N` → a chunked `application/json` stream of
 *   `{type, object}` lines for every change newer than N, kept open; objects in watch events carry
 *   kind/apiVersion (as real servers send them); a watch from a compacted version gets an `ERROR`
 *   event with a 410 `Status` and the stream ends, as a real server does;
 * - bearer-token auth (401 Status otherwise), TLS with a CA made for the test;
 * - every request is recorded, for comparing what a client asks for with an RBAC role.
 *
 * - the pods' port-forward WebSocket endpoint (see PodPortForwards).
 *
 * Faults: `fail()` answers matching requests with an error status, `expire()` sends ERROR 410
 * events, `dropWatches()` ends or cuts open watches, `stop()`/`restart()` take the server away
 * and bring it back on the same port with its state.
 *
 * Field selectors on `metadata.name` and `metadata.namespace` (`=`, `==` or `!=`, comma-joined)
 * filter lists and watches, as the proxy's Node watch uses them. Label selectors, other field
 * selectors, `limit` and `continue` are not implemented and are answered with 400, so that a
 * client starting to send them is noticed instead of silently getting everything.
 */

export type ResourceName = 'services' | 'endpointslices' | 'endpoints' | 'nodes';
export type Verb = 'list' | 'watch';

export interface ResourceInfo {
  readonly resource: ResourceName;
  /** '' for the core group. */
  readonly group: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly listKind: string;
  readonly path: string;
  /** Objects have no namespace (Nodes). */
  readonly clusterScoped?: boolean;
}

export const RESOURCES: Readonly<Record<ResourceName, ResourceInfo>> = {
  services: { resource: 'services', group: '', apiVersion: 'v1', kind: 'Service', listKind: 'ServiceList', path: '/api/v1/services' },
  endpointslices: {
    resource: 'endpointslices',
    group: 'discovery.k8s.io',
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    listKind: 'EndpointSliceList',
    path: '/apis/discovery.k8s.io/v1/endpointslices',
  },
  endpoints: { resource: 'endpoints', group: '', apiVersion: 'v1', kind: 'Endpoints', listKind: 'EndpointsList', path: '/api/v1/endpoints' },
  nodes: { resource: 'nodes', group: '', apiVersion: 'v1', kind: 'Node', listKind: 'NodeList', path: '/api/v1/nodes', clusterScoped: true },
};

const RESOURCE_BY_PATH = new Map(Object.values(RESOURCES).map((r) => [r.path, r]));
const UNSUPPORTED_PARAMS = ['labelSelector', 'limit', 'continue'];

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** The resource addressed, when the path is one this server knows. */
  readonly resource: ResourceName | undefined;
  readonly verb: Verb | undefined;
  readonly status: number;
  readonly userAgent: string;
  readonly atMs: number;
}

export interface FailureRule {
  /** The HTTP status to answer with; 0 never answers (the request hangs until the client gives up or the server stops). */
  readonly status: number;
  /** Only these verbs (default: both). */
  readonly verbs?: readonly Verb[];
  /** Only these resources (default: all). */
  readonly resources?: readonly ResourceName[];
  /** Fail only this many matching requests, then stop failing (default: until cleared). */
  readonly count?: number;
}

export interface Failure {
  /** Matching requests answered with the error so far. */
  readonly hits: number;
  clear(): void;
}

/** A Kubernetes object as stored: plain JSON. */
export type KubeObject = Record<string, unknown> & { metadata?: Record<string, unknown> };

interface StoredEvent {
  readonly rv: number;
  readonly resource: ResourceName;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: KubeObject;
}

interface OpenWatch {
  readonly resource: ResourceName;
  /** Only objects this field selector matches. */
  readonly matches: (obj: KubeObject) => boolean;
  readonly res: http.ServerResponse;
  readonly socket: net.Socket;
  /** Gets no more events (see pauseWatches). */
  paused: boolean;
}

interface FailureState {
  readonly rule: FailureRule;
  remaining: number;
  hits: number;
  cleared: boolean;
}

export interface TestApiServerOptions {
  /** Default: a random token. */
  readonly token?: string;
  /** Default true; false serves plain http (the kubeconfig then sets insecure-skip-tls-verify). */
  readonly tls?: boolean;
  /** First resourceVersion handed out (default 100). */
  readonly initialResourceVersion?: number;
}

export class TestApiServer {
  readonly token: string;
  readonly tls: boolean;
  readonly caPem: string;
  readonly requests: SeenRequest[] = [];
  /** The pods' port-forward endpoint (a WebSocket upgrade): set pods and their backends here. */
  readonly portForwards = new PodPortForwards();

  readonly #server: http.Server;
  #port = 0;
  #listening = false;
  #rv: number;
  /** Watches from a version below this get 410 Expired. */
  #compactedRv = 0;
  readonly #objects = new Map<ResourceName, Map<string, KubeObject>>();
  readonly #history: StoredEvent[] = [];
  readonly #watches = new Set<OpenWatch>();
  readonly #sockets = new Set<net.Socket>();
  #failures: FailureState[] = [];
  readonly #hanging = new Set<http.ServerResponse>();

  private constructor(server: http.Server, token: string, tls: boolean, caPem: string, rv: number) {
    this.#server = server;
    this.token = token;
    this.tls = tls;
    this.caPem = caPem;
    this.#rv = rv;
    for (const r of Object.keys(RESOURCES) as ResourceName[]) this.#objects.set(r, new Map());
    server.on('connection', (socket: net.Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    // TLS sockets are tracked by their underlying connection above; secureConnection needs nothing more.
    server.on('request', (req, res) => this.#onRequest(req, res));
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.portForwards.upgrade(req, socket, head, req.headers.authorization === `Bearer ${this.token}`));
  }

  /** Starts on 127.0.0.1, port 0. */
  static async start(options: TestApiServerOptions = {}): Promise<TestApiServer> {
    const tls = options.tls ?? true;
    const token = options.token ?? `test-token-${randomUUID()}`;
    let server: http.Server;
    let caPem = '';
    if (tls) {
      const certs = await testCertificates();
      caPem = certs.caPem;
      server = https.createServer({ key: certs.keyPem, cert: certs.certPem });
    } else {
      server = http.createServer();
    }
    // Watches are long-lived; node's defaults would cut them after 5 minutes of request time.
    server.requestTimeout = 0;
    server.headersTimeout = 0;
    const api = new TestApiServer(server, token, tls, caPem, options.initialResourceVersion ?? 100);
    await api.#listen(0);
    return api;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.#port}`;
  }

  /** The current (global) resourceVersion. */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** A kubeconfig (YAML text) for this server and token. */
  kubeconfig(options: { token?: string; server?: string } = {}): string {
    const cluster = this.tls ? [`    certificate-authority-data: ${Buffer.from(this.caPem).toString('base64')}`] : ['    insecure-skip-tls-verify: true'];
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: test',
      '  cluster:',
      `    server: ${options.server ?? this.url}`,
      ...cluster,
      'users:',
      '- name: test',
      '  user:',
      `    token: ${options.token ?? this.token}`,
      'contexts:',
      '- name: test',
      '  context:',
      '    cluster: test',
      '    user: test',
      'current-context: test',
      '',
    ].join('\n');
  }

  // ---- state ----------------------------------------------------------------------------------

  /** Creates an object (namespace defaults to `default`); pushes ADDED to open watches. */
  create(resource: ResourceName, obj: KubeObject): KubeObject {
    const stored = this.#prepare(resource, obj);
    const key = objectKey(stored);
    if (this.#objects.get(resource)!.has(key)) throw new Error(`test API server: ${resource} ${key} already exists`);
    stored.metadata!['uid'] = randomUUID();
    stored.metadata!['creationTimestamp'] = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    return this.#store(resource, key, stored, 'ADDED');
  }

  /** Replaces an existing object; pushes MODIFIED. */
  update(resource: ResourceName, obj: KubeObject): KubeObject {
    const stored = this.#prepare(resource, obj);
    const key = objectKey(stored);
    const old = this.#objects.get(resource)!.get(key);
    if (!old) throw new Error(`test API server: ${resource} ${key} does not exist`);
    stored.metadata!['uid'] = old.metadata!['uid'];
    stored.metadata!['creationTimestamp'] = old.metadata!['creationTimestamp'];
    return this.#store(resource, key, stored, 'MODIFIED');
  }

  /** Creates or updates. */
  apply(resource: ResourceName, obj: KubeObject): KubeObject {
    const key = objectKey(this.#prepare(resource, obj));
    return this.#objects.get(resource)!.has(key) ? this.update(resource, obj) : this.create(resource, obj);
  }

  /** Deletes; pushes DELETED carrying the last state with a new resourceVersion, as real servers do. `namespace` is '' for Nodes. */
  delete(resource: ResourceName, namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const old = this.#objects.get(resource)!.get(key);
    if (!old) throw new Error(`test API server: ${resource} ${key} does not exist`);
    this.#objects.get(resource)!.delete(key);
    const gone = structuredClone(old);
    gone.metadata!['resourceVersion'] = String(++this.#rv);
    this.#record(resource, 'DELETED', gone);
  }

  get(resource: ResourceName, namespace: string, name: string): KubeObject | undefined {
    const obj = this.#objects.get(resource)!.get(`${namespace}/${name}`);
    return obj && structuredClone(obj);
  }

  list(resource: ResourceName): KubeObject[] {
    return [...this.#objects.get(resource)!.values()].map((o) => structuredClone(o));
  }

  // ---- faults ---------------------------------------------------------------------------------

  /** Sends a BOOKMARK carrying the current resourceVersion on every open watch (of `resource`). */
  bookmark(resource?: ResourceName): void {
    for (const w of this.#watches) {
      if ((resource && w.resource !== resource) || w.paused) continue;
      const info = RESOURCES[w.resource];
      writeEvent(w.res, { type: 'BOOKMARK', object: { kind: info.kind, apiVersion: info.apiVersion, metadata: { resourceVersion: String(this.#rv) } } });
    }
  }

  /**
   * Compacts the history (a watch from any version before now gets 410 from now on) and sends an
   * `ERROR` event with a 410 Expired Status on every open watch (of `resource`), then ends those
   * streams, as a real server does when a watcher falls too far behind.
   */
  expire(resource?: ResourceName): void {
    this.#compactedRv = this.#rv;
    for (const w of [...this.#watches]) {
      if (resource && w.resource !== resource) continue;
      this.#expireWatch(w.res);
      this.#watches.delete(w);
    }
  }

  /**
   * The watches open now get no more events (they stay open, silent): a watcher that has fallen
   * behind. Watches opened later are not affected. End them with expire() or dropWatches().
   */
  pauseWatches(resource?: ResourceName): void {
    for (const w of this.#watches) if (!resource || w.resource === resource) w.paused = true;
  }

  /** Writes a raw line (without the newline) on every open watch (of `resource`): for malformed events. */
  sendRaw(line: string, resource?: ResourceName): void {
    for (const w of this.#watches) {
      if ((resource && w.resource !== resource) || w.paused) continue;
      if (!w.res.writableEnded && !w.res.destroyed) w.res.write(line + '\n');
    }
  }

  /** Answers matching requests with `status` (count-limited, or until cleared). */
  fail(rule: FailureRule): Failure {
    const state: FailureState = { rule, remaining: rule.count ?? Infinity, hits: 0, cleared: false };
    this.#failures.push(state);
    return {
      get hits() {
        return state.hits;
      },
      clear: () => {
        state.cleared = true;
        this.#failures = this.#failures.filter((f) => f !== state);
      },
    };
  }

  clearFailures(): void {
    for (const f of this.#failures) f.cleared = true;
    this.#failures = [];
  }

  /** Ends every open watch: cleanly (the chunked stream terminates) or abruptly (the socket is destroyed). */
  dropWatches(options: { abrupt?: boolean; resource?: ResourceName } = {}): number {
    let n = 0;
    for (const w of [...this.#watches]) {
      if (options.resource && w.resource !== options.resource) continue;
      this.#watches.delete(w);
      n++;
      if (options.abrupt) w.socket.destroy();
      else w.res.end();
    }
    return n;
  }

  /** Open watches now (of `resource`). */
  openWatches(resource?: ResourceName): number {
    let n = 0;
    for (const w of this.#watches) if (!resource || w.resource === resource) n++;
    return n;
  }

  /** Requests held unanswered by a `status: 0` failure whose client has not gone away. */
  get hangingRequests(): number {
    return this.#hanging.size;
  }

  /** TCP connections open now (watches, requests in flight, idle keep-alive). */
  get openConnections(): number {
    return this.#sockets.size;
  }

  /** Requests seen for a resource and verb (optionally only those answered with `status`). */
  seen(resource: ResourceName, verb: Verb, status?: number): SeenRequest[] {
    return this.requests.filter((r) => r.resource === resource && r.verb === verb && (status === undefined || r.status === status));
  }

  /** Stops listening and cuts every connection; state is kept for restart(). */
  async stop(): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    this.#watches.clear();
    this.portForwards.closeAll();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  /** Listens again on the same port. */
  async restart(): Promise<void> {
    if (this.#listening) return;
    await this.#listen(this.#port);
  }

  async close(): Promise<void> {
    await this.stop();
  }

  // ---- internals ------------------------------------------------------------------------------

  async #listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      this.#server.listen({ host: '127.0.0.1', port }, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
    this.#port = (this.#server.address() as net.AddressInfo).port;
    this.#listening = true;
  }

  #prepare(resource: ResourceName, obj: KubeObject): KubeObject {
    const stored = structuredClone(obj);
    // Stored objects never carry kind/apiVersion; lists leave them out and watch events add them.
    delete stored['kind'];
    delete stored['apiVersion'];
    const metadata = { ...(stored.metadata ?? {}) };
    if (typeof metadata['name'] !== 'string') throw new Error('test API server: metadata.name is required');
    if (RESOURCES[resource].clusterScoped) delete metadata['namespace'];
    else metadata['namespace'] ??= 'default';
    stored.metadata = metadata;
    return stored;
  }

  #store(resource: ResourceName, key: string, stored: KubeObject, type: 'ADDED' | 'MODIFIED'): KubeObject {
    stored.metadata!['resourceVersion'] = String(++this.#rv);
    this.#objects.get(resource)!.set(key, stored);
    this.#record(resource, type, stored);
    return structuredClone(stored);
  }

  #record(resource: ResourceName, type: StoredEvent['type'], object: KubeObject): void {
    const event: StoredEvent = { rv: this.#rv, resource, type, object };
    this.#history.push(event);
    for (const w of this.#watches) if (w.resource === resource && !w.paused && w.matches(object)) writeEvent(w.res, wireEvent(event));
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams);
    const info = RESOURCE_BY_PATH.get(url.pathname);
    const verb: Verb | undefined = info ? (query['watch'] === 'true' || query['watch'] === '1' ? 'watch' : 'list') : undefined;
    const record = (status: number): void => {
      this.requests.push({ method: req.method ?? '', path: url.pathname, query, resource: info?.resource, verb, status, userAgent: req.headers['user-agent'] ?? '', atMs: Date.now() });
    };
    const fail = (code: number, reason: string, message: string): void => {
      record(code);
      sendStatus(res, code, reason, message);
    };

    if (req.headers.authorization !== `Bearer ${this.token}`) return fail(401, 'Unauthorized', 'Unauthorized');
    if (req.method !== 'GET') return fail(405, 'MethodNotAllowed', `${req.method} is not supported by the test API server`);
    if (!info || !verb) return fail(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    const unsupported = UNSUPPORTED_PARAMS.filter((p) => p in query);
    if (unsupported.length > 0) return fail(400, 'BadRequest', `the test API server does not implement ${unsupported.join(', ')}`);
    const matches = fieldSelector(query['fieldSelector'] ?? '');
    if (typeof matches === 'string') return fail(400, 'BadRequest', matches);

    const failure = this.#failures.find((f) => !f.cleared && f.remaining > 0 && (!f.rule.verbs || f.rule.verbs.includes(verb)) && (!f.rule.resources || f.rule.resources.includes(info.resource)));
    if (failure) {
      failure.hits++;
      if (--failure.remaining <= 0) this.#failures = this.#failures.filter((f) => f !== failure);
      if (failure.rule.status === 0) {
        record(0);
        this.#hanging.add(res);
        res.on('close', () => this.#hanging.delete(res));
        return;
      }
      return fail(failure.rule.status, reasonOf(failure.rule.status), `injected failure (${failure.rule.status})`);
    }

    if (verb === 'list') {
      record(200);
      const items = [...this.#objects.get(info.resource)!.values()].filter(matches).sort((a, b) => compare(objectKey(a), objectKey(b)));
      const body = JSON.stringify({ kind: info.listKind, apiVersion: info.apiVersion, metadata: { resourceVersion: String(this.#rv) }, items });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    this.#startWatch(info, query['resourceVersion'] ?? '', matches, req, res, record);
  }

  #startWatch(info: ResourceInfo, rvParam: string, matches: (obj: KubeObject) => boolean, req: http.IncomingMessage, res: http.ServerResponse, record: (status: number) => void): void {
    if (rvParam !== '' && !/^\d+$/.test(rvParam)) {
      record(400);
      sendStatus(res, 400, 'BadRequest', `invalid resourceVersion ${JSON.stringify(rvParam)}`);
      return;
    }
    record(200);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    const from = rvParam === '' ? 0 : Number(rvParam);
    if (from !== 0 && from < this.#compactedRv) {
      this.#expireWatch(res);
      return;
    }
    if (from === 0) {
      // "Any version": a real server starts with synthetic ADDED events for the current state.
      for (const object of this.#objects.get(info.resource)!.values()) if (matches(object)) writeEvent(res, wireEvent({ rv: 0, resource: info.resource, type: 'ADDED', object }));
    } else {
      for (const e of this.#history) if (e.resource === info.resource && e.rv > from && matches(e.object)) writeEvent(res, wireEvent(e));
    }
    const w: OpenWatch = { resource: info.resource, matches, res, socket: req.socket, paused: false };
    this.#watches.add(w);
    res.on('close', () => this.#watches.delete(w));
  }

  #expireWatch(res: http.ServerResponse): void {
    const status = statusBody(410, 'Expired', `too old resource version: compacted at ${this.#compactedRv}`);
    writeEvent(res, { type: 'ERROR', object: status });
    res.end();
  }
}

/**
 * A field selector on `metadata.name` and `metadata.namespace`, which cannot change, so an
 * object never moves in or out of a watch's selection. A string is the 400 message.
 */
function fieldSelector(text: string): ((obj: KubeObject) => boolean) | string {
  const terms: Array<{ field: string; value: string; equal: boolean }> = [];
  for (const term of text.split(',').filter((t) => t !== '')) {
    const m = /^(metadata\.name|metadata\.namespace)(==|=|!=)(.*)$/.exec(term);
    if (!m) return `the test API server does not implement the field selector ${JSON.stringify(term)}`;
    terms.push({ field: m[1]!.slice('metadata.'.length), value: m[3]!, equal: m[2] !== '!=' });
  }
  return (obj) => terms.every((t) => (String(obj.metadata?.[t.field] ?? '') === t.value) === t.equal);
}

function objectKey(obj: KubeObject): string {
  return `${String(obj.metadata?.['namespace'] ?? '')}/${String(obj.metadata?.['name'] ?? '')}`;
}

function wireEvent(e: StoredEvent): { type: string; object: KubeObject } {
  const info = RESOURCES[e.resource];
  return { type: e.type, object: { kind: info.kind, apiVersion: info.apiVersion, ...e.object } };
}

function writeEvent(res: http.ServerResponse, event: unknown): void {
  if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(event) + '\n');
}

function statusBody(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function sendStatus(res: http.ServerResponse, code: number, reason: string, message: string): void {
  const body = JSON.stringify(statusBody(code, reason, message));
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function reasonOf(status: number): string {
  const reasons: Record<number, string> = {
    400: 'BadRequest',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'NotFound',
    410: 'Expired',
    429: 'TooManyRequests',
    500: 'InternalError',
    503: 'ServiceUnavailable',
    504: 'Timeout',
  };
  return reasons[status] ?? 'Unknown';
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---- certificates -------------------------------------------------------------------------------

export interface TestCertificates {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

let certificates: Promise<TestCertificates> | undefined;

/** A CA and a server certificate for 127.0.0.1, made once per test process with openssl. */
export function testCertificates(): Promise<TestCertificates> {
  certificates ??= makeCertificates();
  return certificates;
}

async function makeCertificates(): Promise<TestCertificates> {
  const run = promisify(execFile);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kup-test-ca-'));
  const f = (name: string): string => path.join(dir, name);
  // P-256 keys: generating RSA keys would cost most of a second per test file.
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    await run('openssl', [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.crt'),
      '-subj',
      '/CN=kup-test-ca',
      '-days',
      '2',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    await run('openssl', ['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
    await fsp.writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n');
    await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '2', '-extfile', f('ext.cnf')]);
    const [caPem, certPem, keyPem] = await Promise.all(['ca.crt', 'server.crt', 'server.key'].map((n) => fsp.readFile(f(n), 'utf8')));
    return { caPem: caPem!, certPem: certPem!, keyPem: keyPem! };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
