import test from 'ava';
import type { EndpointSliceSpec, EndpointSpec } from '../../lib/model/endpoint-slice.js';
import type { ServicePortSpec } from '../../lib/model/service.js';
import { serviceGrows, sliceGrows } from '../../lib/source/manifest-growth.js';
import { serviceSpec } from '../helpers/service-spec.js';

function port(name: string, p: number, protocol: 'TCP' | 'UDP' = 'TCP'): ServicePortSpec {
  return { name, protocol, port: p, targetPort: p, nodePort: 0 };
}

function endpoint(address: string, ready = true): EndpointSpec {
  return { addresses: [address], ready, serving: ready, terminating: false, nodeName: '', hostname: '', zone: '', hints: undefined };
}

function slice(endpoints: EndpointSpec[], overrides: Partial<EndpointSliceSpec> = {}): EndpointSliceSpec {
  return { namespace: 'default', name: 'web-1', serviceName: 'web', addressType: 'IPv4', ports: [{ name: 'http', protocol: 'TCP', port: 8080 }], endpoints, ...overrides };
}

test('a Service grows when it only gains ports, in any order', (t) => {
  const before = serviceSpec({ ports: [port('http', 80), port('dns', 53, 'UDP')] });
  t.true(serviceGrows(before, before));
  t.true(serviceGrows(before, serviceSpec({ ports: [port('http', 80), port('dns', 53, 'UDP'), port('https', 443)] })));
  t.true(serviceGrows(before, serviceSpec({ ports: [port('https', 443), port('dns', 53, 'UDP'), port('http', 80)] })));
});

test('a Service that loses or changes a port, or changes anything else, does not grow', (t) => {
  const before = serviceSpec({ ports: [port('http', 80), port('dns', 53, 'UDP')] });
  t.false(serviceGrows(before, serviceSpec({ ports: [port('http', 80)] })), 'a port removed');
  t.false(serviceGrows(before, serviceSpec({ ports: [port('http', 8080), port('dns', 53, 'UDP')] })), 'a port number changed');
  t.false(serviceGrows(before, serviceSpec({ ports: [port('http', 80), port('dns', 53, 'TCP')] })), 'a protocol changed');
  t.false(serviceGrows(before, serviceSpec({ ports: [...before.ports, port('https', 443)], clusterIPs: ['10.96.0.11'] })), 'a port added, the address changed');
  t.false(serviceGrows(before, serviceSpec({ ports: [...before.ports], sessionAffinity: 'ClientIP' })), 'a policy changed');
});

test('an EndpointSlice grows when it only gains endpoints; its trigger time may move', (t) => {
  const before = slice([endpoint('10.1.0.1'), endpoint('10.1.0.2')], { triggerTimeMs: 1000 });
  t.true(sliceGrows(before, slice([endpoint('10.1.0.1'), endpoint('10.1.0.2'), endpoint('10.1.0.3')], { triggerTimeMs: 2000 })));
  t.true(sliceGrows(before, slice([endpoint('10.1.0.3'), endpoint('10.1.0.2'), endpoint('10.1.0.1')])));
});

test('an EndpointSlice that loses an endpoint, changes one, or changes its ports does not grow', (t) => {
  const before = slice([endpoint('10.1.0.1'), endpoint('10.1.0.2')]);
  t.false(sliceGrows(before, slice([endpoint('10.1.0.1')])), 'an endpoint removed');
  t.false(sliceGrows(before, slice([endpoint('10.1.0.1'), endpoint('10.1.0.2', false)])), 'an endpoint no longer ready');
  t.false(sliceGrows(before, slice([endpoint('10.1.0.1'), endpoint('10.1.0.9')])), 'an address changed');
  t.false(sliceGrows(before, slice([...before.endpoints, endpoint('10.1.0.3')], { ports: [{ name: 'http', protocol: 'TCP', port: 9090 }] })), 'the port changed');
});
