import test from 'ava';
import { InvalidObjectError } from '../../lib/errors.js';
import { endpointSliceFromObject, endpointSlicesFromEndpoints } from '../../lib/model/endpoint-slice-from-object.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- objects as YAML gives them, mutated freely by the cases

function slice(fields: Obj = {}, labels: Obj = { 'kubernetes.io/service-name': 'web' }): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-abc12', namespace: 'shop', labels },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.1.0.1'] }],
    ports: [{ name: 'http', port: 8080 }],
    ...fields,
  };
}

function endpoints(subsets: unknown): Obj {
  return { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web' }, subsets };
}

test('a slice gets its defaults', (t) => {
  t.deepEqual(endpointSliceFromObject(slice()), {
    namespace: 'shop',
    name: 'web-abc12',
    serviceName: 'web',
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: [{ addresses: ['10.1.0.1'], ready: true, serving: true, terminating: false, nodeName: '', zone: '', hints: undefined, hostname: '' }],
  });
});

test("an endpoint's hostname is read from a slice and from v1 Endpoints", (t) => {
  const s = endpointSliceFromObject(slice({ endpoints: [{ addresses: ['10.1.0.1'], hostname: 'web-0' }, { addresses: ['10.1.0.2'] }] }));
  t.deepEqual(
    s.endpoints.map((e) => e.hostname),
    ['web-0', ''],
  );
  const [v1] = endpointSlicesFromEndpoints(endpoints([{ addresses: [{ ip: '10.1.0.1', hostname: 'web-0' }], notReadyAddresses: [{ ip: '10.1.0.2', hostname: 'web-1' }] }]));
  t.deepEqual(
    v1!.endpoints.map((e) => e.hostname),
    ['web-0', 'web-1'],
  );
});

test('a hostname that is not a DNS label is rejected, naming the field', (t) => {
  const e1 = t.throws(() => endpointSliceFromObject(slice({ endpoints: [{ addresses: ['10.1.0.1'], hostname: 'Web.0' }] })), { instanceOf: InvalidObjectError });
  t.regex(e1.message, /endpoints\[0\]\.hostname.*lowercase/);
  const e2 = t.throws(() => endpointSlicesFromEndpoints(endpoints([{ addresses: [{ ip: '10.1.0.1', hostname: 'a_b' }] }])), { instanceOf: InvalidObjectError });
  t.regex(e2.message, /subsets\[0\]\.addresses\[0\]\.hostname.*lowercase/);
});

test('conditions: serving follows ready when unset, terminating defaults to false', (t) => {
  const s = endpointSliceFromObject(
    slice({
      endpoints: [
        { addresses: ['10.1.0.1'], conditions: { ready: false }, nodeName: 'n1', hostname: '' },
        { addresses: ['10.1.0.2'], conditions: { ready: false, serving: true, terminating: true } },
        { addresses: ['10.1.0.3'], conditions: { ready: null, serving: null, terminating: null } },
      ],
    }),
  );
  t.deepEqual(
    s.endpoints.map((e) => [e.ready, e.serving, e.terminating, e.nodeName]),
    [
      [false, false, false, 'n1'],
      [false, true, true, ''],
      [true, true, false, ''],
    ],
  );
});

test('ports: missing or null is undefined, an empty list stays empty, name and protocol default', (t) => {
  t.is(endpointSliceFromObject(slice({ ports: undefined })).ports, undefined);
  t.is(endpointSliceFromObject(slice({ ports: null })).ports, undefined);
  t.deepEqual(endpointSliceFromObject(slice({ ports: [] })).ports, []);
  t.deepEqual(endpointSliceFromObject(slice({ ports: [{ port: 53, protocol: 'UDP', name: null }] })).ports, [{ name: '', protocol: 'UDP', port: 53 }]);
});

test('IPv6 slices normalise addresses; FQDN slices accept host names', (t) => {
  t.deepEqual(endpointSliceFromObject(slice({ addressType: 'IPv6', endpoints: [{ addresses: ['FD00:0::1'] }] })).endpoints[0]!.addresses, ['fd00::1']);
  t.deepEqual(endpointSliceFromObject(slice({ addressType: 'FQDN', endpoints: [{ addresses: ['db.example.com'] }] })).endpoints[0]!.addresses, ['db.example.com']);
});

test('zone and hints: read, de-duplicated and sorted; empty hint lists count as no hint', (t) => {
  const s = endpointSliceFromObject(
    slice({
      endpoints: [
        { addresses: ['10.1.0.1'], zone: 'zone-a', hints: { forZones: [{ name: 'zone-b' }, { name: 'zone-a' }, { name: 'zone-b' }] } },
        { addresses: ['10.1.0.2'], nodeName: 'n2', hints: { forNodes: [{ name: 'n2' }], forZones: [{ name: 'zone-a' }] } },
        { addresses: ['10.1.0.3'], hints: { forZones: [], forNodes: null } },
        { addresses: ['10.1.0.4'], hints: null },
      ],
    }),
  );
  t.deepEqual(
    s.endpoints.map((e) => [e.zone, e.hints]),
    [
      ['zone-a', { forZones: ['zone-a', 'zone-b'], forNodes: [] }],
      ['', { forZones: ['zone-a'], forNodes: ['n2'] }],
      ['', undefined],
      ['', undefined],
    ],
  );
});

test('a slice with no endpoints is valid', (t) => {
  t.deepEqual(endpointSliceFromObject(slice({ endpoints: null })).endpoints, []);
});

const invalidSlices: Array<[string, Obj, string, string]> = [
  ['another kind', { ...slice(), kind: 'Endpoints' }, 'kind', 'must be EndpointSlice'],
  ['no name', { ...slice(), metadata: { labels: { 'kubernetes.io/service-name': 'web' } } }, 'metadata.name', 'is required'],
  ['no service-name label', slice({}, {}), 'metadata.labels["kubernetes.io/service-name"]', 'is required'],
  ['no labels at all', { ...slice(), metadata: { name: 'x' } }, 'metadata.labels["kubernetes.io/service-name"]', 'is required'],
  ['bad service-name label', slice({}, { 'kubernetes.io/service-name': 'Web' }), 'metadata.labels["kubernetes.io/service-name"]', 'lowercase'],
  ['no addressType', slice({ addressType: undefined }), 'addressType', 'is required'],
  ['bad addressType', slice({ addressType: 'IPv5' }), 'addressType', 'must be one of IPv4, IPv6, FQDN'],
  ['endpoints not a list', slice({ endpoints: {} }), 'endpoints', 'must be a list'],
  ['no addresses', slice({ endpoints: [{ addresses: [] }] }), 'endpoints[0].addresses', 'at least one address'],
  ['bad IPv4 address', slice({ endpoints: [{ addresses: ['10.1.0.1'] }, { addresses: ['10.1.0.1', '10.1.0'] }] }), 'endpoints[1].addresses[1]', 'must be a valid IPv4 address'],
  ['IPv6 address in an IPv4 slice', slice({ endpoints: [{ addresses: ['fd00::1'] }] }), 'endpoints[0].addresses[0]', 'must be a valid IPv4 address'],
  ['IPv4 address in an IPv6 slice', slice({ addressType: 'IPv6' }), 'endpoints[0].addresses[0]', 'must be a valid IPv6 address'],
  ['empty FQDN', slice({ addressType: 'FQDN', endpoints: [{ addresses: [''] }] }), 'endpoints[0].addresses[0]', 'must be a host name'],
  ['ready not a boolean', slice({ endpoints: [{ addresses: ['10.1.0.1'], conditions: { ready: 'yes' } }] }), 'endpoints[0].conditions.ready', 'must be true or false'],
  ['serving not a boolean', slice({ endpoints: [{ addresses: ['10.1.0.1'], conditions: { serving: 1 } }] }), 'endpoints[0].conditions.serving', 'must be true or false'],
  ['terminating not a boolean', slice({ endpoints: [{ addresses: ['10.1.0.1'], conditions: { terminating: 'no' } }] }), 'endpoints[0].conditions.terminating', 'must be true or false'],
  ['nodeName not a string', slice({ endpoints: [{ addresses: ['10.1.0.1'], nodeName: 3 }] }), 'endpoints[0].nodeName', 'must be a string'],
  ['zone not a string', slice({ endpoints: [{ addresses: ['10.1.0.1'], zone: 1 }] }), 'endpoints[0].zone', 'must be a string'],
  ['hints not a mapping', slice({ endpoints: [{ addresses: ['10.1.0.1'], hints: ['a'] }] }), 'endpoints[0].hints', 'must be a mapping'],
  ['forZones not a list', slice({ endpoints: [{ addresses: ['10.1.0.1'], hints: { forZones: 'a' } }] }), 'endpoints[0].hints.forZones', 'must be a list'],
  ['forZones entry not a mapping', slice({ endpoints: [{ addresses: ['10.1.0.1'], hints: { forZones: ['a'] } }] }), 'endpoints[0].hints.forZones[0]', 'must be a mapping'],
  ['forZones entry without a name', slice({ endpoints: [{ addresses: ['10.1.0.1'], hints: { forZones: [{ name: 'a' }, {}] } }] }), 'endpoints[0].hints.forZones[1].name', 'is required'],
  [
    'forNodes name not a string',
    slice({ endpoints: [{ addresses: ['10.1.0.1'] }, { addresses: ['10.1.0.2'], hints: { forNodes: [{ name: 7 }] } }] }),
    'endpoints[1].hints.forNodes[0].name',
    'must be a string',
  ],
  ['port missing', slice({ ports: [{ name: 'http' }] }), 'ports[0].port', 'must be an integer 1-65535'],
  [
    'port too big',
    slice({
      ports: [
        { name: 'a', port: 1 },
        { name: 'b', port: 65536 },
      ],
    }),
    'ports[1].port',
    'must be an integer 1-65535',
  ],
  ['bad port protocol', slice({ ports: [{ port: 80, protocol: 'ICMP' }] }), 'ports[0].protocol', 'must be one of TCP, UDP, SCTP'],
  ['duplicate port name', slice({ ports: [{ port: 80 }, { port: 81 }] }), 'ports[1].name', 'must be unique'],
];

for (const [title, obj, field, reason] of invalidSlices) {
  test(`slice: rejects ${title}: ${field}`, (t) => {
    const err = t.throws(() => endpointSliceFromObject(obj), { instanceOf: InvalidObjectError });
    t.is(err.field, field);
    t.true(err.reason.includes(reason), `reason "${err.reason}" should include "${reason}"`);
  });
}

test('Endpoints: one slice per subset; notReadyAddresses are neither ready nor serving', (t) => {
  const slices = endpointSlicesFromEndpoints(
    endpoints([
      { addresses: [{ ip: '10.1.0.1', nodeName: 'n1', hostname: '' }], notReadyAddresses: [{ ip: '10.1.0.2' }], ports: [{ name: 'http', port: 8080 }] },
      { addresses: [{ ip: '10.1.0.3' }], ports: [{ name: 'http', port: 9090, protocol: 'TCP' }] },
    ]),
  );
  t.deepEqual(slices, [
    {
      namespace: 'default',
      name: 'web/subset-0',
      serviceName: 'web',
      addressType: 'IPv4',
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      endpoints: [
        { addresses: ['10.1.0.1'], ready: true, serving: true, terminating: false, nodeName: 'n1', zone: '', hints: undefined, hostname: '' },
        { addresses: ['10.1.0.2'], ready: false, serving: false, terminating: false, nodeName: '', zone: '', hints: undefined, hostname: '' },
      ],
    },
    {
      namespace: 'default',
      name: 'web/subset-1',
      serviceName: 'web',
      addressType: 'IPv4',
      ports: [{ name: 'http', protocol: 'TCP', port: 9090 }],
      endpoints: [{ addresses: ['10.1.0.3'], ready: true, serving: true, terminating: false, nodeName: '', zone: '', hints: undefined, hostname: '' }],
    },
  ]);
});

test('Endpoints: a subset with both families is split; an IPv6-only subset keeps the plain name', (t) => {
  const slices = endpointSlicesFromEndpoints(endpoints([{ addresses: [{ ip: 'fd00::1' }, { ip: '10.1.0.1' }], notReadyAddresses: [{ ip: 'FD00::2' }] }, { addresses: [{ ip: 'fd00::3' }] }]));
  t.deepEqual(
    slices.map((s) => [s.name, s.addressType, s.endpoints.map((e) => `${e.addresses[0]}/${e.ready}`), s.ports]),
    [
      ['web/subset-0', 'IPv4', ['10.1.0.1/true'], undefined],
      ['web/subset-0-v6', 'IPv6', ['fd00::1/true', 'fd00::2/false'], undefined],
      ['web/subset-1', 'IPv6', ['fd00::3/true'], undefined],
    ],
  );
});

test('Endpoints: no subsets gives no slices', (t) => {
  t.deepEqual(endpointSlicesFromEndpoints(endpoints(undefined)), []);
  t.deepEqual(endpointSlicesFromEndpoints(endpoints([])), []);
});

const invalidEndpoints: Array<[string, Obj, string, string]> = [
  ['another kind', { ...endpoints([]), kind: 'Service' }, 'kind', 'must be Endpoints'],
  ['no name', { ...endpoints([]), metadata: {} }, 'metadata.name', 'is required'],
  ['subsets not a list', endpoints({}), 'subsets', 'must be a list'],
  ['subset not a mapping', endpoints([null]), 'subsets[0]', 'is required'],
  ['bad ip', endpoints([{ addresses: [{ ip: '10.1.0.1' }, { ip: '10.1.0.1' }, { ip: '10.1.0.256' }] }]), 'subsets[0].addresses[2].ip', 'must be a valid IP address'],
  ['missing ip', endpoints([{}, { notReadyAddresses: [{ hostname: 'a' }] }]), 'subsets[1].notReadyAddresses[0].ip', 'must be a valid IP address'],
  ['address not a mapping', endpoints([{ addresses: ['10.1.0.1'] }]), 'subsets[0].addresses[0]', 'must be a mapping'],
  ['bad port', endpoints([{ addresses: [{ ip: '10.1.0.1' }], ports: [{ port: 0 }] }]), 'subsets[0].ports[0].port', 'must be an integer 1-65535'],
  ['bad protocol', endpoints([{ ports: [{ port: 80, protocol: 'HTTP' }] }]), 'subsets[0].ports[0].protocol', 'must be one of TCP, UDP, SCTP'],
];

for (const [title, obj, field, reason] of invalidEndpoints) {
  test(`Endpoints: rejects ${title}: ${field}`, (t) => {
    const err = t.throws(() => endpointSlicesFromEndpoints(obj), { instanceOf: InvalidObjectError });
    t.is(err.field, field);
    t.true(err.reason.includes(reason), `reason "${err.reason}" should include "${reason}"`);
  });
}

test('the last-change-trigger-time annotation is read from slices and Endpoints; a malformed one is ignored', (t) => {
  const at = (value: unknown): Obj => ({
    name: 'web-abc12',
    namespace: 'shop',
    labels: { 'kubernetes.io/service-name': 'web' },
    annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': value },
  });
  t.is(endpointSliceFromObject({ ...slice(), metadata: at('2024-05-01T10:00:00.123456789Z') }).triggerTimeMs, Date.UTC(2024, 4, 1, 10, 0, 0, 123));
  t.is(endpointSliceFromObject({ ...slice(), metadata: at('2024-05-01T12:00:00+02:00') }).triggerTimeMs, Date.UTC(2024, 4, 1, 10));
  t.is(endpointSliceFromObject(slice()).triggerTimeMs, undefined);
  for (const bad of ['yesterday', '2024-05-01', '', 17, null]) t.is(endpointSliceFromObject({ ...slice(), metadata: at(bad) }).triggerTimeMs, undefined, String(bad));
  const eps = endpoints([{ addresses: [{ ip: '10.1.0.1' }, { ip: 'fd00::1' }] }]);
  eps['metadata'] = { name: 'web', annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2024-05-01T10:00:00Z' } };
  t.deepEqual(
    endpointSlicesFromEndpoints(eps).map((s) => s.triggerTimeMs),
    [Date.UTC(2024, 4, 1, 10), Date.UTC(2024, 4, 1, 10)],
  );
});
