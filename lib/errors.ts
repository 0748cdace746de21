/**
 * Every error the project throws, each with a stable `code` that users and scripts can match on.
 * Errors are thrown only while parsing flags, loading manifests or starting parts; the per-connection
 * path logs and closes sockets instead.
 */

import { formatHostPort } from './net/host-port.js';

/** Base class: every project error has a stable code. */
export class ProxyError extends Error {
  override name = 'ProxyError';
  readonly code: string = 'KUP_ERR_PROXY';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A command-line flag or configuration value is unknown or malformed. Lists every problem found. */
export class InvalidConfigError extends ProxyError {
  override name = 'InvalidConfigError';
  override readonly code = 'KUP_ERR_INVALID_CONFIG';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

/** A Kubernetes object (from a manifest or the API) failed validation; names the object and field. */
export class InvalidObjectError extends ProxyError {
  override name = 'InvalidObjectError';
  override readonly code = 'KUP_ERR_INVALID_OBJECT';
  readonly field: string;
  readonly reason: string;
  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.field = field;
    this.reason = reason;
  }
}

/** A manifest file or document could not be read or parsed. */
export class ManifestError extends ProxyError {
  override name = 'ManifestError';
  override readonly code = 'KUP_ERR_MANIFEST';
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.file = file;
  }
}

/** The port allocator has no free port left in --proxy-port-range. */
export class PortAllocationError extends ProxyError {
  override name = 'PortAllocationError';
  override readonly code = 'KUP_ERR_PORT_ALLOCATION';
  constructor(range: string) {
    super(`port allocation failed: no free port left in proxy port range ${range}`);
  }
}

/** A listener could not be opened because another socket holds the address and port. */
export class PortConflictError extends ProxyError {
  override name = 'PortConflictError';
  override readonly code = 'KUP_ERR_PORT_CONFLICT';
  readonly address: string;
  readonly port: number;
  constructor(address: string, port: number, options?: { cause?: unknown }) {
    super(`port conflict: ${formatHostPort(address, port)} is already in use by another socket`, options);
    this.address = address;
    this.port = port;
  }
}

/** A listener could not be opened for a reason other than a port conflict. */
export class ListenError extends ProxyError {
  override name = 'ListenError';
  override readonly code = 'KUP_ERR_LISTEN';
  constructor(address: string, port: number, options?: { cause?: unknown }) {
    const detail = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(`cannot listen on ${formatHostPort(address, port)}${detail}`, options);
  }
}

/** A part was used after close() or destroy(). */
export class ClosedError extends ProxyError {
  override name = 'ClosedError';
  override readonly code = 'KUP_ERR_CLOSED';
  constructor(what: string) {
    super(`${what} is closed`);
  }
}

/** No usable kubeconfig: a file that is missing or unreadable, no current cluster, or a bad --master URL. */
export class KubeConfigError extends ProxyError {
  override name = 'KubeConfigError';
  override readonly code = 'KUP_ERR_KUBECONFIG';
  /** The kubeconfig file at fault, when there is one. */
  readonly file: string | undefined;
  constructor(message: string, options?: { file?: string; cause?: unknown }) {
    super(message, options);
    this.file = options?.file;
  }
}

/**
 * Installing, syncing or removing packet rules (iptables, nftables) or service addresses failed, or the
 * process lacks the privileges to do so. Carries the command that failed and its stderr when there was one.
 */
export class RulesError extends ProxyError {
  override name = 'RulesError';
  override readonly code = 'KUP_ERR_RULES';
  /** The command line that failed (argv joined with spaces), when a command failed. */
  readonly command: string | undefined;
  /** What the command wrote to stderr, trimmed. */
  readonly stderr: string | undefined;
  constructor(message: string, options?: { command?: readonly string[]; stderr?: string; cause?: unknown }) {
    super(message, options);
    this.command = options?.command?.join(' ');
    this.stderr = options?.stderr?.trim();
  }
}

/**
 * The hosts file (--hosts-file) could not be read or written, or kept changing under every attempt
 * to update it. The agent logs it and keeps serving; the next change tries again.
 */
export class HostsFileError extends ProxyError {
  override name = 'HostsFileError';
  override readonly code = 'KUP_ERR_HOSTS_FILE';
  /** The file at fault. */
  readonly file: string;
  constructor(message: string, options: { file: string; cause?: unknown }) {
    super(message, options);
    this.file = options.file;
  }
}

/** Every address of --service-ip-pool is taken: the service named gets none and is not served. */
export class ServiceIPPoolExhaustedError extends ProxyError {
  override name = 'ServiceIPPoolExhaustedError';
  override readonly code = 'KUP_ERR_SERVICE_IP_POOL_EXHAUSTED';
  /** `namespace/name` of the service left without an address. */
  readonly service: string;
  constructor(message: string, options: { service: string }) {
    super(message);
    this.service = options.service;
  }
}

/**
 * A connection through the API server's `pods/portforward` (--dial-via port-forward) failed: the
 * API refused the request (the pod is gone, the user may not forward), or the kubelet reported on
 * the error channel that it could not reach the pod's port.
 */
export class PortForwardError extends ProxyError {
  override name = 'PortForwardError';
  override readonly code = 'KUP_ERR_PORT_FORWARD';
  /** `namespace/pod:port`. */
  readonly target: string;
  constructor(target: string, message: string, options?: { cause?: unknown }) {
    super(`port-forward to ${target}: ${message}`, options);
    this.target = target;
  }
}

/**
 * Closing a part failed in one or more of its steps. Every step still ran: one thing that cannot be
 * removed must not keep the others in place. Carries each failure in the order they happened.
 */
export class CloseError extends ProxyError {
  override name = 'CloseError';
  override readonly code = 'KUP_ERR_CLOSE';
  /** What was being closed, e.g. `agent`. */
  readonly what: string;
  readonly errors: readonly unknown[];
  constructor(what: string, errors: readonly unknown[]) {
    const messages = errors.map((e) => (e instanceof Error ? e.message : String(e)));
    super(`${what} did not close cleanly: ${messages.join('; ')}`, errors.length === 1 ? { cause: errors[0] } : undefined);
    this.what = what;
    this.errors = errors;
  }
}

/** A data-path worker process (--workers) did not report ready in time, or died while starting. */
export class WorkerStartError extends ProxyError {
  override name = 'WorkerStartError';
  override readonly code = 'KUP_ERR_WORKER_START';
  /** The worker's number, from 1. */
  readonly worker: number;
  constructor(worker: number) {
    super(`data-path worker ${worker} did not start`);
    this.worker = worker;
  }
}
