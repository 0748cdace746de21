import test from 'ava';
import { InvalidObjectError } from '../../lib/errors.js';
import { endpointSliceFromObject, endpointSlicesFromEndpoints } from '../../lib/model/endpoint-slice-from-object.js';
import { EndpointsCache } from '../../lib/model/endpoints-cache.js';
import { serviceSpec } from '../helpers/service-spec.js';

// An endpoint's targetRef names the Pod that --dial-via port-forward forwards to.

type Obj = Record<string, unknown>;

function slice(endpoints: Obj[]): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-abc12', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints,
    ports: [{ name: 'http', port: 8080 }],
  };
}

test("EndpointSlice: targetRef is read, its namespace defaulting to the slice's; absent or nameless means none", (t) => {
  const s = endpointSliceFromObject(
    slice([
      { addresses: ['10.1.0.1'], targetRef: { kind: 'Pod', namespace: 'shop', name: 'web-7d9f-x2', uid: 'u1' } },
      { addresses: ['10.1.0.2'], targetRef: { kind: 'Pod', name: 'web-7d9f-y3' } },
      { addresses: ['10.1.0.3'] },
      { addresses: ['10.1.0.4'], targetRef: { kind: 'Pod' } },
      { addresses: ['10.1.0.5'], targetRef: { kind: 'Node', name: 'node-1' } },
    ]),
  );
  t.deepEqual(
    s.endpoints.map((e) => e.targetRef),
    [{ kind: 'Pod', namespace: 'shop', name: 'web-7d9f-x2' }, { kind: 'Pod', namespace: 'shop', name: 'web-7d9f-y3' }, undefined, undefined, { kind: 'Node', namespace: 'shop', name: 'node-1' }],
  );
});

test('EndpointSlice: a malformed targetRef is refused naming the field', (t) => {
  const cases: Array<[unknown, string]> = [
    ['web-0', 'endpoints[0].targetRef'],
    [{ kind: 'Pod', name: 7 }, 'endpoints[0].targetRef.name'],
    [{ kind: 'Pod', name: 'Bad_Name' }, 'endpoints[0].targetRef.name'],
    [{ kind: ['Pod'], name: 'web-0' }, 'endpoints[0].targetRef.kind'],
  ];
  for (const [targetRef, field] of cases) {
    const err = t.throws(() => endpointSliceFromObject(slice([{ addresses: ['10.1.0.1'], targetRef }])), { instanceOf: InvalidObjectError });
    t.is(err?.field, field, JSON.stringify(targetRef));
  }
});

test('v1 Endpoints: addresses[].targetRef and notReadyAddresses[].targetRef are read', (t) => {
  const [s] = endpointSlicesFromEndpoints({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'web', namespace: 'shop' },
    subsets: [
      {
        addresses: [{ ip: '10.1.0.1', targetRef: { kind: 'Pod', namespace: 'shop', name: 'web-0' } }],
        notReadyAddresses: [{ ip: '10.1.0.2', targetRef: { kind: 'Pod', name: 'web-1' } }],
        ports: [{ name: 'http', port: 8080 }],
      },
    ],
  });
  t.deepEqual(
    s!.endpoints.map((e) => [e.addresses[0], e.targetRef?.name, e.ready]),
    [
      ['10.1.0.1', 'web-0', true],
      ['10.1.0.2', 'web-1', false],
    ],
  );
});

test("the balancer's endpoints carry their Pod; one slice naming it is enough", (t) => {
  const svc = serviceSpec({ namespace: 'shop', ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 0 }] });
  const cache = new EndpointsCache();
  const a = endpointSliceFromObject(
    slice([{ addresses: ['10.1.0.1'], targetRef: { kind: 'Pod', name: 'web-0' } }, { addresses: ['10.1.0.2'] }, { addresses: ['10.1.0.3'], targetRef: { kind: 'Node', name: 'n' } }]),
  );
  const b = endpointSliceFromObject({
    ...slice([{ addresses: ['10.1.0.2'], targetRef: { kind: 'Pod', name: 'web-1' } }]),
    metadata: { name: 'web-zz', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
  });
  cache.update('shop/web-abc12', a);
  t.deepEqual(
    cache.endpointsFor(svc, svc.ports[0]!).map((e) => [e.key, e.pod?.name]),
    [
      ['10.1.0.1:8080', 'web-0'],
      ['10.1.0.2:8080', undefined],
      ['10.1.0.3:8080', undefined],
    ],
  );
  cache.update('shop/web-zz', b);
  t.deepEqual(
    cache.endpointsFor(svc, svc.ports[0]!).map((e) => [e.key, e.pod && `${e.pod.namespace}/${e.pod.name}`]),
    [
      ['10.1.0.1:8080', 'shop/web-0'],
      ['10.1.0.2:8080', 'shop/web-1'],
      ['10.1.0.3:8080', undefined],
    ],
  );
});
