import test from 'ava';
import type { EndpointSliceSpec, EndpointSpec } from '../../lib/model/endpoint-slice.js';
import { localReadyEndpoints } from '../../lib/model/local-ready-endpoints.js';

const here = (node: string): boolean => node === 'node-a';

function ep(addresses: string[], nodeName: string, ready = true, terminating = false): EndpointSpec {
  return { addresses, nodeName, ready, serving: ready || terminating, terminating, zone: '', hints: undefined, hostname: '' };
}

function slice(name: string, endpoints: EndpointSpec[], addressType: 'IPv4' | 'IPv6' = 'IPv4', ports: EndpointSliceSpec['ports'] = [{ name: 'http', protocol: 'TCP', port: 8080 }]): EndpointSliceSpec {
  return { namespace: 'shop', name, serviceName: 'web', addressType, ports, endpoints };
}

test('counts ready endpoints on this node only', (t) => {
  const slices = [slice('a', [ep(['10.0.0.1'], 'node-a'), ep(['10.0.0.2'], 'node-b'), ep(['10.0.0.3'], 'node-a'), ep(['10.0.0.4'], '')])];
  t.is(localReadyEndpoints(slices, 'IPv4', here), 2);
  t.is(
    localReadyEndpoints(slices, 'IPv4', () => false),
    0,
  );
});

test('terminating or unready local endpoints do not count: load balancers must leave the node first', (t) => {
  const slices = [slice('a', [ep(['10.0.0.1'], 'node-a', false, true), ep(['10.0.0.2'], 'node-a', false)])];
  t.is(localReadyEndpoints(slices, 'IPv4', here), 0);
});

test('an address is one endpoint, however many slices and ports list it', (t) => {
  const slices = [slice('http', [ep(['10.0.0.1'], 'node-a')]), slice('grpc', [ep(['10.0.0.1'], 'node-a'), ep(['10.0.0.9'], 'node-a')], 'IPv4', [{ name: 'grpc', protocol: 'TCP', port: 9090 }])];
  t.is(localReadyEndpoints(slices, 'IPv4', here), 2);
});

test('only the asked family is counted; FQDN slices and slices with an empty port list never are', (t) => {
  const v4 = slice('v4', [ep(['10.0.0.1'], 'node-a')]);
  const v6 = slice('v6', [ep(['2001:db8::1'], 'node-a'), ep(['2001:db8::2'], 'node-a')], 'IPv6');
  t.is(localReadyEndpoints([v4, v6], 'IPv4', here), 1);
  t.is(localReadyEndpoints([v4, v6], 'IPv6', here), 2);
  const fqdn: EndpointSliceSpec = { ...slice('fqdn', [ep(['db.example.com'], 'node-a')]), addressType: 'FQDN' };
  t.is(localReadyEndpoints([fqdn], 'IPv4', here), 0);
  t.is(localReadyEndpoints([slice('no-ports', [ep(['10.0.0.7'], 'node-a')], 'IPv4', [])], 'IPv4', here), 0);
  // No port list at all (converted v1 Endpoints): the service's numeric targetPort is proxied to, so it counts.
  const undeclared: EndpointSliceSpec = { ...slice('undeclared', [ep(['10.0.0.8'], 'node-a')]), ports: undefined };
  t.is(localReadyEndpoints([undeclared], 'IPv4', here), 1);
});
