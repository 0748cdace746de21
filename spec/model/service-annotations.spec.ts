import test from 'ava';
import { InvalidObjectError } from '../../lib/errors.js';
import { MAX_CONNECTION_AGE_ANNOTATION } from '../../lib/model/max-connection-age-annotation.js';
import { PROXY_PROTOCOL_ANNOTATION, PROXY_PROTOCOL_PORTS_ANNOTATION } from '../../lib/model/proxy-protocol-annotation.js';
import { serviceFromObject } from '../../lib/model/service-from-object.js';
import { proxyProtocolOf } from '../../lib/model/service.js';

type Obj = Record<string, unknown>;

/** A Service with ports http (TCP 80), metrics (TCP 9090) and dns (UDP 53), annotated. */
function service(annotations: Obj): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', annotations },
    spec: {
      clusterIP: '10.96.0.10',
      ports: [
        { name: 'http', port: 80 },
        { name: 'metrics', port: 9090 },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    },
  };
}

const PORTS = { http: { name: 'http', protocol: 'TCP' }, metrics: { name: 'metrics', protocol: 'TCP' }, dns: { name: 'dns', protocol: 'UDP' } } as const;

test('proxy-protocol: every TCP port by default, never a UDP one', (t) => {
  const svc = serviceFromObject(service({ [PROXY_PROTOCOL_ANNOTATION]: 'v2' }));
  t.deepEqual(svc.proxyProtocol, { version: 'v2', ports: ['http', 'metrics'] });
  t.is(proxyProtocolOf(svc, PORTS.http), 'v2');
  t.is(proxyProtocolOf(svc, PORTS.metrics), 'v2');
  t.is(proxyProtocolOf(svc, PORTS.dns), undefined);
});

test('proxy-protocol-ports: only the ports named (by name or number)', (t) => {
  const svc = serviceFromObject(service({ [PROXY_PROTOCOL_ANNOTATION]: 'v1', [PROXY_PROTOCOL_PORTS_ANNOTATION]: ' 9090 ' }));
  t.deepEqual(svc.proxyProtocol, { version: 'v1', ports: ['metrics'] });
  t.is(proxyProtocolOf(svc, PORTS.http), undefined);
  t.is(proxyProtocolOf(svc, PORTS.metrics), 'v1');
  t.deepEqual(serviceFromObject(service({ [PROXY_PROTOCOL_ANNOTATION]: 'v1', [PROXY_PROTOCOL_PORTS_ANNOTATION]: 'http,metrics,80' })).proxyProtocol?.ports, ['http', 'metrics']);
});

test('max-connection-age: a duration in ms, 0 = never; absent, no field', (t) => {
  t.is(serviceFromObject(service({ [MAX_CONNECTION_AGE_ANNOTATION]: '10m' })).maxConnectionAgeMs, 600_000);
  t.is(serviceFromObject(service({ [MAX_CONNECTION_AGE_ANNOTATION]: '0' })).maxConnectionAgeMs, 0);
  const plain = serviceFromObject(service({}));
  t.false('maxConnectionAgeMs' in plain);
  t.false('proxyProtocol' in plain);
});

const field = (name: string): string => `metadata.annotations["${name}"]`;

const invalid: Array<[string, Obj, string, string]> = [
  ['unknown version', { [PROXY_PROTOCOL_ANNOTATION]: 'v3' }, field(PROXY_PROTOCOL_ANNOTATION), 'must be v1 or v2'],
  ['version as a number', { [PROXY_PROTOCOL_ANNOTATION]: 2 }, field(PROXY_PROTOCOL_ANNOTATION), 'must be v1 or v2'],
  ['ports without a version', { [PROXY_PROTOCOL_PORTS_ANNOTATION]: 'http' }, field(PROXY_PROTOCOL_PORTS_ANNOTATION), 'needs'],
  ['an unknown port', { [PROXY_PROTOCOL_ANNOTATION]: 'v1', [PROXY_PROTOCOL_PORTS_ANNOTATION]: 'http,grpc' }, field(PROXY_PROTOCOL_PORTS_ANNOTATION), 'names no port of the Service: "grpc"'],
  ['a UDP port', { [PROXY_PROTOCOL_ANNOTATION]: 'v2', [PROXY_PROTOCOL_PORTS_ANNOTATION]: 'dns' }, field(PROXY_PROTOCOL_PORTS_ANNOTATION), 'TCP ports only'],
  ['an empty port list', { [PROXY_PROTOCOL_ANNOTATION]: 'v2', [PROXY_PROTOCOL_PORTS_ANNOTATION]: '' }, field(PROXY_PROTOCOL_PORTS_ANNOTATION), 'comma-separated'],
  ['an age that is not a duration', { [MAX_CONNECTION_AGE_ANNOTATION]: 'soon' }, field(MAX_CONNECTION_AGE_ANNOTATION), 'must be a duration'],
  ['an age below a second', { [MAX_CONNECTION_AGE_ANNOTATION]: '500ms' }, field(MAX_CONNECTION_AGE_ANNOTATION), 'at least 1s'],
  ['an age as a number', { [MAX_CONNECTION_AGE_ANNOTATION]: 600 }, field(MAX_CONNECTION_AGE_ANNOTATION), 'must be a duration'],
];

for (const [title, annotations, path, reason] of invalid) {
  test(`rejects ${title}: ${path}`, (t) => {
    const err = t.throws(() => serviceFromObject(service(annotations)), { instanceOf: InvalidObjectError });
    t.is(err.field, path);
    t.true(err.reason.includes(reason), `reason "${err.reason}" should include "${reason}"`);
    t.is(err.code, 'KUP_ERR_INVALID_OBJECT');
  });
}
