import { performance } from 'node:perf_hooks';
import { CoreV1Api, DiscoveryV1Api, KubeConfig, Observable } from '@kubernetes/client-node';
import type { ConfigurationOptions, KubernetesListObject, KubernetesObject, RequestContext, ResponseContext } from '@kubernetes/client-node';
import { ClosedError, InvalidConfigError, KubeConfigError, ProxyError } from '../errors.js';
import { logger } from '../log.js';
import { keyOfSlice } from '../model/endpoint-slice.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import { endpointSliceFromObject, endpointSlicesFromEndpoints } from '../model/endpoint-slice-from-object.js';
import type { NodeSpec } from '../model/node.js';
import { nodeFromObject } from '../model/node-from-object.js';
import { keyOfService } from '../model/service.js';
import type { ServiceSpec } from '../model/service.js';
import { serviceFromObject } from '../model/service-from-object.js';
import { Backoff } from './backoff.js';
import { endpointAddressFilter, filterEndpointAddresses, validateRefusedCidrs } from './endpoint-address-filter.js';
import type { EndpointAddressFilter, OwnListeners } from './endpoint-address-filter.js';
import { InformerSiblings } from './informer-siblings.js';
import { InformerSupervisor } from './informer-supervisor.js';
import type { InformerHealth } from './informer-supervisor.js';
import { ObjectTracker } from './object-tracker.js';
import { notServedBecause, rawLabels } from './proxy-labels.js';
import type { ServiceSource, ServiceSourceHandler } from './service-source.js';

const log = logger('kubernetes');

export { SERVICE_PROXY_NAME_LABEL } from './proxy-labels.js';

/** kube-proxy's default --config-sync-period. */
export const DEFAULT_CONFIG_SYNC_PERIOD_MS = 15 * 60 * 1000;

export interface KubeSourceOptions {
  readonly kubeConfig: KubeConfig;
  /** Watch v1 Endpoints instead of discovery.k8s.io/v1 EndpointSlices (for clusters before 1.21). */
  readonly useEndpoints?: boolean;
  /**
   * Services labelled `service.kubernetes.io/service-proxy-name` belong to another proxy and are
   * ignored, unless the label equals this name.
   */
  readonly serviceProxyName?: string;
  /**
   * --config-sync-period: an informer with no successful list, watch connection or event for this
   * long is relisted (default 15 min). client-node re-makes an idle watch every 30 s, so below
   * 30 s this also relists healthy quiet informers.
   */
  readonly configSyncPeriodMs?: number;
  /**
   * Accept endpoints on loopback addresses. Only for tests of the whole data path, which may
   * target nothing but loopback; never set from the command line (see endpoint-address-filter.ts).
   */
  readonly allowLoopbackEndpoints?: boolean;
  /**
   * This node's name (--hostname-override, or the host name): its Node object is watched for
   * topology-aware routing and /healthz nodeEligible. Without it no Node is watched.
   */
  readonly nodeName?: string;
  /** More endpoint addresses to refuse (--refuse-endpoint-cidrs), beside the built-in ones (see endpoint-address-filter.ts). */
  readonly refusedCidrs?: readonly string[];
  /** This node's health, metrics and proxy listeners on its own addresses: endpoints there are refused. */
  readonly ownListeners?: OwnListeners;
  /** Restart delays after an informer fails: initialMs (default 1 s) doubling up to maxMs (default 30 s), ±20%. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Told of every list that failed, before it is retried (see unreachable-cluster-ip-warning.ts). */
  readonly onListError?: (err: unknown) => void;
}

export interface KubeSourceHealth {
  /** Every informer's last contact with the API server succeeded. */
  readonly connected: boolean;
  /** The oldest of the informers' last successes (ms since the epoch; 0 before the first), so a health check sees the worst one. */
  readonly lastSuccessMs: number;
  /** The most recent failure of any informer (kept after recovery). */
  readonly lastError?: string;
  /** Restarts after errors plus watchdog relists, all informers. */
  readonly informerRestarts: number;
}

type Resource = 'services' | 'endpointslices' | 'endpoints' | 'nodes';

/**
 * Services and endpoints from a Kubernetes API server, through client-node informers (one for v1
 * Services, one for discovery.k8s.io/v1 EndpointSlices or v1 Endpoints, and, given a node name,
 * one for this node's v1 Node, selected by `metadata.name` as kube-proxy does), supervised so that
 * they restart after failures and relist when stuck (see InformerSupervisor).
 *
 * What is delivered is the converted specs' real differences only; the last known state is kept
 * while the API server is unreachable (an outage never deletes anything); an invalid object is
 * warned about and keeps its last good state. Endpoint addresses that would make the proxy
 * connect to the node itself or to the cloud metadata service are dropped with a warning.
 *
 * Services of another proxy, and headless ones, are filtered here rather than with kube-proxy's
 * label selector: "label absent or equal to X" (--service-proxy-name) cannot be written as one
 * selector, a label change then needs no special handling (an object that gains the label is
 * simply converted to nothing, which removes it), and manifests go through the very same test
 * (see proxy-labels.ts). The price is that the objects of headless Services and of other
 * proxies still cross the wire; they are dropped before validation.
 */
export class KubeSource implements ServiceSource {
  readonly kind = 'kubernetes';
  readonly #useEndpoints: boolean;
  readonly #proxyName: string | undefined;
  readonly #nodeName: string | undefined;
  readonly #silenceBoundMs: number;
  readonly #backoff: { readonly initialMs?: number; readonly maxMs?: number } | undefined;
  readonly #kc: KubeConfig;
  readonly #core: CoreV1Api;
  readonly #discovery: DiscoveryV1Api;
  readonly #server: string;
  readonly #onListError: ((err: unknown) => void) | undefined;

  #handler: ServiceSourceHandler | undefined;
  #supervisors: InformerSupervisor[] = [];
  readonly #siblings = new InformerSiblings();
  #services: ObjectTracker<ServiceSpec> | undefined;
  #slices: ObjectTracker<EndpointSliceSpec> | undefined;
  /** The services and endpoints informers: sync waits for these, not for the Node's. */
  #required: InformerSupervisor[] = [];
  /** Slice key → what was refused in its current version (warned about once per object, when it changes). */
  readonly #refused = new Map<string, string>();
  readonly #addressFilter: EndpointAddressFilter;
  #synced = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #startedAt = 0;
  #settle: { resolve: () => void; reject: (err: Error) => void } | undefined;

  constructor(options: KubeSourceOptions) {
    const problems: string[] = [];
    if (!(options.kubeConfig instanceof KubeConfig)) problems.push('kubeConfig: must be a KubeConfig (see loadKubeConfig)');
    const period = options.configSyncPeriodMs ?? DEFAULT_CONFIG_SYNC_PERIOD_MS;
    if (!Number.isFinite(period) || period <= 0) problems.push(`configSyncPeriodMs: must be a number > 0, got ${period}`);
    if (options.serviceProxyName !== undefined && typeof options.serviceProxyName !== 'string') problems.push('serviceProxyName: must be a string');
    if (options.nodeName !== undefined && (typeof options.nodeName !== 'string' || options.nodeName === '')) problems.push('nodeName: must be a non-empty string');
    problems.push(...Backoff.validate(options.backoff ?? {}));
    problems.push(...validateRefusedCidrs(options.refusedCidrs ?? []));
    if (problems.length > 0) throw new InvalidConfigError(problems);

    this.#useEndpoints = options.useEndpoints ?? false;
    this.#addressFilter = endpointAddressFilter({
      allowLoopback: options.allowLoopbackEndpoints ?? false,
      refusedCidrs: options.refusedCidrs ?? [],
      ...(options.ownListeners ? { ownListeners: options.ownListeners } : {}),
    });
    this.#proxyName = options.serviceProxyName || undefined;
    this.#nodeName = options.nodeName;
    this.#silenceBoundMs = period;
    this.#backoff = options.backoff;
    this.#onListError = options.onListError;
    this.#kc = options.kubeConfig;
    const cluster = this.#kc.getCurrentCluster();
    if (!cluster) throw new KubeConfigError('kubeconfig has no current cluster');
    this.#server = cluster.server;
    try {
      this.#core = this.#kc.makeApiClient(CoreV1Api);
      this.#discovery = this.#kc.makeApiClient(DiscoveryV1Api);
    } catch (err) {
      throw new KubeConfigError(`cannot make an API client: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Lists and watches until both initial lists have been delivered, then calls onSynced and
   * resolves. While the API server cannot be reached it keeps retrying (see health()); it
   * rejects with ClosedError when the source is closed first.
   */
  async start(handler: ServiceSourceHandler): Promise<void> {
    if (this.#closed) throw new ClosedError('kubernetes source');
    if (this.#handler) throw new ProxyError('kubernetes source already started');
    this.#handler = handler;
    this.#startedAt = performance.now();
    const done = new Promise<void>((resolve, reject) => (this.#settle = { resolve, reject }));

    this.#services = new ObjectTracker<ServiceSpec>({
      kind: 'Service',
      convert: (obj) => this.#convertService(obj),
      deliver: (key, previous, current) => this.#deliver(() => handler.onServiceChange(key, previous, current)),
    });
    this.#slices = new ObjectTracker<EndpointSliceSpec>({
      kind: this.#useEndpoints ? 'Endpoints' : 'EndpointSlice',
      convert: (obj) => this.#convertEndpoints(obj),
      deliver: (key, previous, current) => {
        if (current === undefined) this.#refused.delete(key);
        this.#deliver(() => handler.onEndpointSliceChange(key, previous, current));
      },
    });
    const endpointsResource: Resource = this.#useEndpoints ? 'endpoints' : 'endpointslices';
    this.#required = [this.#supervise('services', this.#services), this.#supervise(endpointsResource, this.#slices)];
    this.#supervisors = [...this.#required];
    if (this.#nodeName !== undefined) this.#supervisors.push(this.#superviseNode(this.#nodeName, handler));
    log.info('watching kubernetes api', { server: this.#server, endpoints: endpointsResource, serviceProxyName: this.#proxyName ?? '', node: this.#nodeName ?? '' });
    for (const s of this.#supervisors) s.start();
    await done;
  }

  /** Stops the informers, their watches and timers. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const supervisors = this.#stop();
      await Promise.all(supervisors.map((s) => s.close()));
    })();
    return this.#closing;
  }

  destroy(): void {
    for (const s of this.#stop()) void s.close();
  }

  health(): KubeSourceHealth {
    const hs: InformerHealth[] = this.#supervisors.map((s) => s.health());
    const last = hs.filter((h) => h.lastError !== undefined).sort((a, b) => (b.lastErrorMs ?? 0) - (a.lastErrorMs ?? 0))[0];
    return {
      connected: hs.length > 0 && hs.every((h) => h.connected),
      lastSuccessMs: hs.length > 0 ? Math.min(...hs.map((h) => h.lastSuccessMs)) : 0,
      ...(last ? { lastError: last.lastError } : {}),
      informerRestarts: hs.reduce((n, h) => n + h.restarts, 0),
    };
  }

  /** Marks the source closed and returns the supervisors to close (each only once). */
  #stop(): InformerSupervisor[] {
    if (this.#closed) return [];
    this.#closed = true;
    this.#settle?.reject(new ClosedError('kubernetes source'));
    this.#settle = undefined;
    return this.#supervisors;
  }

  #supervise(resource: Exclude<Resource, 'nodes'>, tracker: ObjectTracker<ServiceSpec> | ObjectTracker<EndpointSliceSpec>): InformerSupervisor {
    const paths: Record<Exclude<Resource, 'nodes'>, string> = {
      services: '/api/v1/services',
      endpointslices: '/apis/discovery.k8s.io/v1/endpointslices',
      endpoints: '/api/v1/endpoints',
    };
    const lists: Record<Exclude<Resource, 'nodes'>, (signal: AbortSignal) => Promise<KubernetesListObject<KubernetesObject>>> = {
      services: (signal) => this.#core.listServiceForAllNamespaces({}, withSignal(signal)),
      endpointslices: (signal) => this.#discovery.listEndpointSliceForAllNamespaces({}, withSignal(signal)),
      endpoints: (signal) => this.#core.listEndpointsForAllNamespaces({}, withSignal(signal)),
    };
    return new InformerSupervisor({
      resource,
      path: paths[resource],
      kubeConfig: this.#kc,
      list: (signal) =>
        lists[resource](signal).catch((err: unknown) => {
          if (!this.#closed) this.#onListError?.(err);
          throw err;
        }),
      sink: tracker,
      silenceBoundMs: this.#silenceBoundMs,
      ...(this.#backoff ? { backoff: this.#backoff } : {}),
      siblings: this.#siblings,
      onFirstList: () => this.#checkSynced(),
    });
  }

  /**
   * The Node is not waited for: services are served (without topology) even where the Node
   * cannot be read, say with RBAC that predates the nodes rule; that shows in health() instead.
   * Its list normally arrives with the others, and a zone learnt later re-routes at once.
   */
  #superviseNode(name: string, handler: ServiceSourceHandler): InformerSupervisor {
    const nodes = new ObjectTracker<NodeSpec>({
      kind: 'Node',
      convert: (obj) => {
        const node = nodeFromObject(obj);
        // The field selector should make this impossible; a server that ignores it must not
        // make another node's labels this one's.
        return node.name === name ? new Map([[name, node]]) : new Map();
      },
      deliver: (_key, previous, current) => {
        // As kube-proxy, a deleted Node's last state counts, and a Node gone is one being deleted.
        const node = current ?? (previous ? { ...previous, deleting: true } : undefined);
        this.#deliver(() => handler.onNodeChange?.(node));
      },
    });
    const fieldSelector = `metadata.name=${name}`;
    return new InformerSupervisor({
      resource: 'nodes',
      path: '/api/v1/nodes',
      fieldSelector,
      kubeConfig: this.#kc,
      list: (signal) => this.#core.listNode({ fieldSelector }, withSignal(signal)),
      sink: nodes,
      silenceBoundMs: this.#silenceBoundMs,
      ...(this.#backoff ? { backoff: this.#backoff } : {}),
    });
  }

  #checkSynced(): void {
    if (this.#synced || this.#closed || !this.#required.every((s) => s.health().listed)) return;
    this.#synced = true;
    log.info('kubernetes source synced', {
      services: this.#services?.size ?? 0,
      endpointSlices: this.#slices?.size ?? 0,
      rejected: (this.#services?.rejected ?? 0) + (this.#slices?.rejected ?? 0),
      ms: Math.round(performance.now() - this.#startedAt),
    });
    this.#deliver(() => this.#handler!.onSynced());
    this.#settle?.resolve();
    this.#settle = undefined;
  }

  /** Before onSynced a handler failure fails start(); afterwards it is logged and the next change still goes out. */
  #deliver(call: () => void): void {
    if (this.#closed) return;
    try {
      call();
    } catch (err) {
      log.error('service change handler failed', { error: (err as Error).message });
      if (!this.#synced) {
        const settle = this.#settle;
        this.#settle = undefined;
        this.destroy();
        settle?.reject(err as Error);
      }
    }
  }

  #convertService(obj: KubernetesObject): ReadonlyMap<string, ServiceSpec> {
    if (!this.#isOurs(obj)) return new Map();
    const svc = serviceFromObject(obj);
    return new Map([[keyOfService(svc), svc]]);
  }

  #convertEndpoints(obj: KubernetesObject): ReadonlyMap<string, EndpointSliceSpec> {
    if (!this.#isOurs(obj)) return new Map();
    const slices = this.#useEndpoints ? endpointSlicesFromEndpoints(obj) : [endpointSliceFromObject(obj)];
    return new Map(slices.map((s) => [keyOfSlice(s), this.#withoutRefusedAddresses(s)]));
  }

  /**
   * The endpoint controllers copy a Service's labels to its slices and Endpoints (and label those
   * of a headless Service `service.kubernetes.io/headless`), so the same test applies to all
   * three kinds, as kube-proxy's label selector does.
   */
  #isOurs(obj: KubernetesObject): boolean {
    return notServedBecause(rawLabels(obj), this.#proxyName) === undefined;
  }

  #withoutRefusedAddresses(slice: EndpointSliceSpec): EndpointSliceSpec {
    const key = keyOfSlice(slice);
    const { slice: filtered, refused } = filterEndpointAddresses(slice, this.#addressFilter);
    // One line per object, repeated only when what it has refused changes.
    const what = refused.map(({ address, reason }) => `${address} (${reason})`).join(', ');
    if (refused.length > 0 && this.#refused.get(key) !== what) {
      log.warn('refused endpoint addresses', { slice: key, service: `${slice.namespace}/${slice.serviceName}`, refused: what });
    }
    if (refused.length > 0) this.#refused.set(key, what);
    else this.#refused.delete(key);
    return filtered;
  }
}

/** Per-call options that give the list request an AbortSignal (client-node has no timeout of its own). */
function withSignal(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          ctx.setSignal(signal);
          return new Observable(Promise.resolve(ctx));
        },
        post: (ctx: ResponseContext) => new Observable(Promise.resolve(ctx)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}
