import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { Cluster, Context, User } from '@kubernetes/client-node';
import { KubeConfigError } from '../errors.js';
import { applyTokenFiles } from './kubeconfig-token-file.js';

/** Where the connection settings came from. */
export type KubeConfigOrigin = 'kubeconfig' | 'in-cluster' | 'default';

export interface KubeConfigOptions {
  /** --kubeconfig: a kubeconfig file, used as is. */
  readonly kubeconfig?: string;
  /** --master: replaces the server URL of the current cluster. */
  readonly master?: string;
  /** --context: the context to use in place of the kubeconfig's current-context. */
  readonly context?: string;
}

/** What loadKubeConfig reads from the process; tests replace it. */
export interface KubeConfigEnvironment {
  /** Default: process.env ($KUBECONFIG, $KUBERNETES_SERVICE_HOST/_PORT, $HOME). */
  readonly env?: NodeJS.ProcessEnv;
  /** Prepended to /var/run/secrets/kubernetes.io/serviceaccount (default ''). */
  readonly serviceAccountPrefix?: string;
}

export interface LoadedKubeConfig {
  readonly kc: KubeConfig;
  /** The API server URL requests go to. */
  readonly server: string;
  readonly origin: KubeConfigOrigin;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Chooses the API server and credentials as kube-proxy does: --kubeconfig when given; otherwise
 * the pod's service account when running in a pod; otherwise $KUBECONFIG or ~/.kube/config.
 * --master then replaces the server URL of whichever cluster was chosen (and is enough on its
 * own, without credentials, for `kubectl proxy`). Throws KubeConfigError, naming the file, when
 * none of these gives a usable cluster.
 */
export function loadKubeConfig(options: KubeConfigOptions, environment: KubeConfigEnvironment = {}): LoadedKubeConfig {
  const env = environment.env ?? process.env;
  const saDir = `${environment.serviceAccountPrefix ?? ''}${SERVICE_ACCOUNT_DIR}`;
  const master = options.master === undefined || options.master === '' ? undefined : parseMaster(options.master);

  let kc: KubeConfig;
  let origin: KubeConfigOrigin;
  if (options.kubeconfig !== undefined && options.kubeconfig !== '') {
    kc = loadFile(options.kubeconfig);
    origin = 'kubeconfig';
  } else if (env['KUBERNETES_SERVICE_HOST'] && env['KUBERNETES_SERVICE_PORT'] && isFile(path.join(saDir, 'token'))) {
    kc = new KubeConfig();
    // loadFromCluster reads KUBERNETES_SERVICE_HOST/_PORT from process.env only.
    withEnv(env, () => kc.loadFromCluster(environment.serviceAccountPrefix ?? ''));
    origin = 'in-cluster';
  } else {
    const files = defaultFiles(env);
    if (files.length > 0) {
      kc = loadMerged(files);
    } else if (master) {
      kc = new KubeConfig();
      kc.loadFromClusterAndUser({ name: 'master', server: master, skipTLSVerify: false }, { name: 'anonymous' });
    } else {
      throw new KubeConfigError('no kubeconfig found: give --kubeconfig or --master, set $KUBECONFIG, create ~/.kube/config, or run in a pod with a service account');
    }
    origin = 'default';
  }

  if (options.context !== undefined) {
    if (!kc.getContextObject(options.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new KubeConfigError(`--context: kubeconfig has no context "${options.context}" (it has: ${known.join(', ') || 'none'})`, { file: options.kubeconfig });
    }
    kc.setCurrentContext(options.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    const context = kc.getCurrentContext();
    throw new KubeConfigError(context ? `kubeconfig has no cluster for current context "${context}"` : 'kubeconfig has no current context', { file: options.kubeconfig });
  }
  const server = master ?? cluster.server;
  if (server !== cluster.server || (server.startsWith('http:') && !cluster.skipTLSVerify)) replaceServer(kc, cluster, server);
  checkCredentialFiles(kc, origin === 'kubeconfig' ? options.kubeconfig : undefined);
  return { kc, server: kc.getCurrentCluster()!.server, origin };
}

function parseMaster(master: string): string {
  let url: URL;
  try {
    url = new URL(master);
  } catch {
    throw new KubeConfigError(`--master: "${master}" is not a URL (expected https://host:port or http://host:port)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new KubeConfigError(`--master: "${master}" must be an http:// or https:// URL`);
  return master.replace(/\/+$/, '');
}

/**
 * Sets the current cluster's server. client-node refuses plain http unless TLS verification is
 * "skipped" (kubectl does not); for an http:// server (typically `kubectl proxy`) there is no TLS
 * to verify, so that flag costs nothing. An https:// server keeps the cluster's CA and verification.
 */
function replaceServer(kc: KubeConfig, current: Cluster, server: string): void {
  const replaced: Cluster = { ...current, server, skipTLSVerify: server.startsWith('http:') ? true : current.skipTLSVerify };
  kc.loadFromOptions({
    clusters: kc.getClusters().map((c) => (c === current ? replaced : c)),
    contexts: kc.getContexts(),
    users: kc.getUsers(),
    currentContext: kc.getCurrentContext(),
  });
}

function loadFile(file: string): KubeConfig {
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'does not exist' : `cannot be read (${(err as Error).message})`;
    throw new KubeConfigError(`kubeconfig ${file} ${what}`, { file, cause: err });
  }
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(file);
    applyTokenFiles(kc, file);
  } catch (err) {
    throw new KubeConfigError(`kubeconfig ${file} is not valid: ${(err as Error).message}`, { file, cause: err });
  }
  return kc;
}

function defaultFiles(env: NodeJS.ProcessEnv): string[] {
  const list = env['KUBECONFIG'];
  if (list) {
    const files = list.split(path.delimiter).filter((f) => f !== '');
    // As kubectl: files in $KUBECONFIG that do not exist are skipped, but one must remain.
    const existing = files.filter(isFile);
    if (existing.length === 0) throw new KubeConfigError(`none of the files in $KUBECONFIG exists: ${files.join(path.delimiter)}`, { file: files[0] });
    return existing;
  }
  const home = env['HOME'] || os.homedir();
  const file = path.join(home, '.kube', 'config');
  return isFile(file) ? [file] : [];
}

/** Merges as kubectl does: the first file to set current-context wins, and so does the first of two same-named entries. */
function loadMerged(files: readonly string[]): KubeConfig {
  const configs = files.map(loadFile);
  if (configs.length === 1) return configs[0]!;
  const clusters = new Map<string, Cluster>();
  const users = new Map<string, User>();
  const contexts = new Map<string, Context>();
  let currentContext = '';
  for (const c of configs) {
    for (const x of c.getClusters()) if (!clusters.has(x.name)) clusters.set(x.name, x);
    for (const x of c.getUsers()) if (!users.has(x.name)) users.set(x.name, x);
    for (const x of c.getContexts()) if (!contexts.has(x.name)) contexts.set(x.name, x);
    if (currentContext === '' && c.getCurrentContext()) currentContext = c.getCurrentContext();
  }
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [...clusters.values()], users: [...users.values()], contexts: [...contexts.values()], currentContext });
  return kc;
}

/** client-node reads these at every request; a missing one would otherwise fail every request, for ever. */
function checkCredentialFiles(kc: KubeConfig, file: string | undefined): void {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  const refs: [string, string | undefined][] = [
    ['certificate-authority', cluster?.caFile],
    ['client-certificate', user?.certFile],
    ['client-key', user?.keyFile],
  ];
  const tokenFile = (user?.authProvider as { config?: { tokenFile?: unknown } } | undefined)?.config?.tokenFile;
  if (typeof tokenFile === 'string') refs.push(['token file', tokenFile]);
  for (const [what, ref] of refs) {
    if (!ref) continue;
    try {
      fs.accessSync(ref, fs.constants.R_OK);
    } catch (err) {
      throw new KubeConfigError(`${what} ${ref} cannot be read: ${(err as Error).message}`, { file, cause: err });
    }
  }
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Runs fn with KUBERNETES_SERVICE_* taken from env (for tests that pass their own environment). */
function withEnv(env: NodeJS.ProcessEnv, fn: () => void): void {
  if (env === process.env) return fn();
  const keys = ['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT'];
  const saved = keys.map((k) => process.env[k]);
  try {
    for (const k of keys) {
      if (env[k] === undefined) delete process.env[k];
      else process.env[k] = env[k];
    }
    fn();
  } finally {
    keys.forEach((k, i) => {
      if (saved[i] === undefined) delete process.env[k];
      else process.env[k] = saved[i];
    });
  }
}
