import test from 'ava';
import * as errors from '../lib/errors.js';
import { ProxyError } from '../lib/errors.js';

interface Row {
  /** Builds the error as lib/ does. */
  readonly make: () => ProxyError;
  readonly name: string;
  readonly code: string;
  readonly message: string;
  /** Context fields the error must carry, with their values. */
  readonly fields?: Record<string, unknown>;
  readonly cause?: unknown;
}

const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:80'), { code: 'ECONNREFUSED' });
const inUse = Object.assign(new Error('listen EADDRINUSE: address already in use ::1:80'), { code: 'EADDRINUSE' });
const first = new errors.RulesError('iptables-restore failed');
const second = new errors.RulesError('address removal failed');

/** One row per class exported by lib/errors.ts, keyed by the class's name. */
const table: Record<string, Row> = {
  ProxyError: {
    make: () => new ProxyError('manifest source already started'),
    name: 'ProxyError',
    code: 'KUP_ERR_PROXY',
    message: 'manifest source already started',
  },
  InvalidConfigError: {
    make: () => new errors.InvalidConfigError(['--proxy-mode: must be userspace', '--workers: must be an integer 0-64']),
    name: 'InvalidConfigError',
    code: 'KUP_ERR_INVALID_CONFIG',
    message: '--proxy-mode: must be userspace; --workers: must be an integer 0-64',
    fields: { problems: ['--proxy-mode: must be userspace', '--workers: must be an integer 0-64'] },
  },
  InvalidObjectError: {
    make: () => new errors.InvalidObjectError('spec.ports[0].protocol', 'must be one of TCP, UDP, SCTP'),
    name: 'InvalidObjectError',
    code: 'KUP_ERR_INVALID_OBJECT',
    message: 'spec.ports[0].protocol: must be one of TCP, UDP, SCTP',
    fields: { field: 'spec.ports[0].protocol', reason: 'must be one of TCP, UDP, SCTP' },
  },
  ManifestError: {
    make: () => new errors.ManifestError('/etc/kup/web.yaml', 'manifest path /etc/kup/web.yaml does not exist', { cause: refused }),
    name: 'ManifestError',
    code: 'KUP_ERR_MANIFEST',
    message: 'manifest path /etc/kup/web.yaml does not exist',
    fields: { file: '/etc/kup/web.yaml' },
    cause: refused,
  },
  PortAllocationError: {
    make: () => new errors.PortAllocationError('30000-30001'),
    name: 'PortAllocationError',
    code: 'KUP_ERR_PORT_ALLOCATION',
    message: 'port allocation failed: no free port left in proxy port range 30000-30001',
  },
  PortConflictError: {
    make: () => new errors.PortConflictError('::1', 80, { cause: inUse }),
    name: 'PortConflictError',
    code: 'KUP_ERR_PORT_CONFLICT',
    message: 'port conflict: [::1]:80 is already in use by another socket',
    fields: { address: '::1', port: 80 },
    cause: inUse,
  },
  ListenError: {
    make: () => new errors.ListenError('10.0.0.1', 8080, { cause: refused }),
    name: 'ListenError',
    code: 'KUP_ERR_LISTEN',
    message: 'cannot listen on 10.0.0.1:8080: connect ECONNREFUSED 10.0.0.1:80',
    cause: refused,
  },
  ClosedError: {
    make: () => new errors.ClosedError('manifest source'),
    name: 'ClosedError',
    code: 'KUP_ERR_CLOSED',
    message: 'manifest source is closed',
  },
  KubeConfigError: {
    make: () => new errors.KubeConfigError('kubeconfig has no current context', { file: '/root/.kube/config' }),
    name: 'KubeConfigError',
    code: 'KUP_ERR_KUBECONFIG',
    message: 'kubeconfig has no current context',
    fields: { file: '/root/.kube/config' },
  },
  RulesError: {
    make: () => new errors.RulesError('iptables-restore failed', { command: ['iptables-restore', '--noflush'], stderr: 'line 3 failed\n' }),
    name: 'RulesError',
    code: 'KUP_ERR_RULES',
    message: 'iptables-restore failed',
    fields: { command: 'iptables-restore --noflush', stderr: 'line 3 failed' },
  },
  HostsFileError: {
    make: () => new errors.HostsFileError('hosts file /etc/hosts: permission denied', { file: '/etc/hosts' }),
    name: 'HostsFileError',
    code: 'KUP_ERR_HOSTS_FILE',
    message: 'hosts file /etc/hosts: permission denied',
    fields: { file: '/etc/hosts' },
  },
  ServiceIPPoolExhaustedError: {
    make: () => new errors.ServiceIPPoolExhaustedError('--service-ip-pool 10.96.0.0/31 has no address left for default/web', { service: 'default/web' }),
    name: 'ServiceIPPoolExhaustedError',
    code: 'KUP_ERR_SERVICE_IP_POOL_EXHAUSTED',
    message: '--service-ip-pool 10.96.0.0/31 has no address left for default/web',
    fields: { service: 'default/web' },
  },
  PortForwardError: {
    make: () => new errors.PortForwardError('default/web-0:8080', 'pod not found', { cause: refused }),
    name: 'PortForwardError',
    code: 'KUP_ERR_PORT_FORWARD',
    message: 'port-forward to default/web-0:8080: pod not found',
    fields: { target: 'default/web-0:8080' },
    cause: refused,
  },
  CloseError: {
    make: () => new errors.CloseError('agent', [first, second]),
    name: 'CloseError',
    code: 'KUP_ERR_CLOSE',
    message: 'agent did not close cleanly: iptables-restore failed; address removal failed',
    fields: { what: 'agent', errors: [first, second] },
  },
  WorkerStartError: {
    make: () => new errors.WorkerStartError(2),
    name: 'WorkerStartError',
    code: 'KUP_ERR_WORKER_START',
    message: 'data-path worker 2 did not start',
    fields: { worker: 2 },
  },
};

const classes = Object.entries(errors).filter((e): e is [string, typeof ProxyError] => typeof e[1] === 'function' && (e[1] === ProxyError || e[1].prototype instanceof ProxyError));

test('every error class of lib/errors.ts has a row in this table, and every row a class', (t) => {
  t.deepEqual(classes.map(([name]) => name).sort(), Object.keys(table).sort());
});

test('every code is distinct and shaped KUP_ERR_*', (t) => {
  const codes = Object.values(table).map((row) => row.code);
  t.is(new Set(codes).size, codes.length);
  for (const code of codes) t.regex(code, /^KUP_ERR_[A-Z_]+$/);
});

for (const [className, row] of Object.entries(table)) {
  test(`${className}: name, code, message and context`, (t) => {
    const err = row.make();
    t.is(err.constructor.name, className);
    t.true(err instanceof ProxyError);
    t.true(err instanceof Error);
    t.is(err.name, row.name);
    t.is(err.code, row.code);
    t.is(err.message, row.message);
    t.is(err.cause, row.cause);
    t.true(String(err.stack).startsWith(`${row.name}: ${row.message}`), 'the stack names the class and message');
    for (const [field, want] of Object.entries(row.fields ?? {})) t.deepEqual((err as unknown as Record<string, unknown>)[field], want, field);
  });
}

test('CloseError keeps a single failure as its cause', (t) => {
  const err = new errors.CloseError('agent', [first]);
  t.is(err.cause, first);
  t.is(err.message, 'agent did not close cleanly: iptables-restore failed');
});
