import type { SeededRandom } from './seeded-random.js';

/** One generated bad object: the object, the field made invalid, and how. */
export interface MutatedObject {
  readonly kind: 'Service' | 'EndpointSlice';
  readonly name: string;
  readonly object: Record<string, unknown>;
  /** The field made invalid, as the agent names fields: `spec.ports[0].port`. */
  readonly field: string;
  readonly how: string;
}

type Path = ReadonlyArray<string | number>;

const ODD_STRINGS = ['ｐｏｒｔ', '\u202e08', '😀', 'e\u0301', '\u0000', 'Ünïcödé', ' ', 'a'.repeat(300), '1e3'];

function nested(depth: number, leaf: unknown, asList: boolean): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = asList ? [v] : { a: v };
  return v;
}

/** Values that are never a valid port number. */
function badPort(r: SeededRandom): [unknown, string] {
  return r.pick<() => [unknown, string]>([
    () => [r.pick(ODD_STRINGS), 'string'],
    () => [65536 + r.int(1e9), 'too big'],
    () => [Number.MAX_SAFE_INTEGER * 1e10, 'huge'],
    () => [-1 - r.int(1000), 'negative'],
    () => [0.5 + r.int(1000), 'fraction'],
    () => [r.next() < 0.5, 'boolean'],
    () => [nested(5 + r.int(60), 80, r.next() < 0.5), 'deep nesting'],
  ])();
}

function set(obj: Record<string, unknown>, path: Path, value: unknown): void {
  let cur = obj as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) cur = cur[key] as Record<string | number, unknown>;
  cur[path[path.length - 1]!] = value;
}

function fieldName(path: Path): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

export function goodService(name: string, clusterIP: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: { type: 'ClusterIP', clusterIP, clusterIPs: [clusterIP], ports: [{ name: 'p', port: 8080, protocol: 'TCP', targetPort: 8080 }] },
  };
}

export function goodSlice(name: string, service: string, address: string, port: number): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [address], conditions: { ready: true } }],
    ports: [{ name: 'p', port, protocol: 'TCP' }],
  };
}

/**
 * A valid Service or EndpointSlice with one field made invalid: a wrong type, a number out of
 * range or huge, odd unicode, a deep (but bounded) nesting where a scalar belongs, or a required
 * field missing. `clusterIP(i)` gives the case's own address.
 */
export function mutatedObject(r: SeededRandom, i: number, clusterIP: string): MutatedObject {
  if (r.next() < 0.5) {
    const name = `fz-svc-${i}`;
    const object = goodService(name, clusterIP);
    const [path, value, how] = r.pick<() => [Path, unknown, string]>([
      () => {
        const [v, how] = badPort(r);
        return [['spec', 'ports', 0, 'port'], v, how];
      },
      () => {
        const [v, how] = badPort(r);
        return [['spec', 'ports', 0, 'targetPort'], typeof v === 'string' ? nested(3, v, true) : v, how];
      },
      () => [['spec', 'ports', 0, 'protocol'], r.pick(['XTP', 42, 'tcp', ...ODD_STRINGS]), 'protocol'],
      () => [['spec', 'ports', 0, 'name'], r.pick(['Ünïcödé', 'UPPER', '-x', 'a'.repeat(64), 7, '😀']), 'port name'],
      () => [['spec', 'ports'], r.pick(['8080', 8080, { port: 8080 }, nested(20, 1, false)]), 'ports not a list'],
      () => [['spec', 'clusterIP'], r.pick(['999.1.1.1', 'ｆｅ８０::１', '10.0.0.1\u202e', '😀', 12345]), 'cluster IP'],
      () => [['spec', 'type'], r.pick(['Bogus', 5, 'clusterip', '😀']), 'type'],
      () => [['spec'], r.pick(['spec', 1, [1, 2]]), 'spec not a mapping'],
    ])();
    // clusterIPs would be checked first, against clusterIP: leave only the field made invalid.
    if (path[1] === 'clusterIP') delete (object['spec'] as Record<string, unknown>)['clusterIPs'];
    set(object, path, value);
    return { kind: 'Service', name, object, field: fieldName(path), how };
  }
  const name = `fz-eps-${i}`;
  const object = goodSlice(name, name, '127.0.0.1', 8080);
  const [path, value, how] = r.pick<() => [Path, unknown, string]>([
    () => {
      const [v, how] = badPort(r);
      return [['ports', 0, 'port'], v, how];
    },
    () => [['endpoints', 0, 'addresses'], r.pick(['127.0.0.1', [], 7, { a: 1 }]), 'addresses'],
    () => [['endpoints', 0, 'addresses', 0], r.pick([12345, '', nested(10, 'x', true)]), 'address'],
    () => [['endpoints'], r.pick(['x', 3, { a: 1 }]), 'endpoints not a list'],
    () => [['addressType'], r.pick(['IPv9', 7, '😀', 'ipv4']), 'address type'],
    () => [['ports', 0, 'protocol'], r.pick(['XTP', 42, 'tcp']), 'protocol'],
    () => [['ports'], r.pick(['p', 5, { a: 1 }]), 'ports not a list'],
    () => [['endpoints', 0, 'conditions', 'ready'], r.pick(['yes', 3, ['true']]), 'condition'],
  ])();
  set(object, path, value);
  return { kind: 'EndpointSlice', name, object, field: fieldName(path), how };
}
