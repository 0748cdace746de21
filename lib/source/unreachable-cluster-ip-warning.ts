import { logger } from '../log.js';
import { describeApiError } from './api-error.js';
import type { LoadedKubeConfig } from './kube-config.js';

const log = logger('kubernetes');

/** Failures to open or keep a connection: nothing answered at the address. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

/**
 * The in-cluster config names the API server by $KUBERNETES_SERVICE_HOST, the ClusterIP of the
 * `kubernetes` Service: an address only a service proxy on this node makes reachable. On a node
 * where this proxy is the service proxy it is not serving yet (it needs the API first), so the
 * first list can never succeed, and the informers' retry warnings alone do not say why.
 *
 * This says it once per process, on the first list that fails without an HTTP answer, naming
 * the cause and the fix: a kubeconfig with the control-plane endpoint, as kubeadm gives
 * kube-proxy. An HTTP error (401, 500...) means the address works, and says nothing here.
 */
export class UnreachableClusterIPWarning {
  readonly #server: string;
  #warned = false;

  private constructor(server: string) {
    this.#server = server;
  }

  /** A warning for this configuration, or undefined when its API address is not the kubernetes Service's ClusterIP. */
  static for(loaded: Pick<LoadedKubeConfig, 'server' | 'origin'>): UnreachableClusterIPWarning | undefined {
    return loaded.origin === 'in-cluster' ? new UnreachableClusterIPWarning(loaded.server) : undefined;
  }

  /** Told of every failed list (KubeSourceOptions.onListError). */
  readonly observe = (err: unknown): void => {
    if (this.#warned || !isUnreachable(err)) return;
    this.#warned = true;
    log.warn('api server unreachable at the kubernetes service clusterIP', {
      server: this.#server,
      error: describeApiError(err),
      cause: 'the in-cluster config uses $KUBERNETES_SERVICE_HOST, the ClusterIP of the kubernetes Service, which only a service proxy on this node can serve',
      fix: 'give --kubeconfig (or --config with clientConnection.kubeconfig) naming the control-plane endpoint, as examples/kubernetes/configmap.yaml does',
    });
  };
}

function isUnreachable(err: unknown): boolean {
  // Bounded: a cause chain is short, but nothing forbids a cycle.
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    // The list's own deadline: the connection never delivered an answer.
    if (e.name === 'TimeoutError') return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return false;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true;
    if (e instanceof AggregateError && e.errors.some(isUnreachable)) return true;
  }
  return false;
}
