import test from 'ava';
import type { ServiceSpec } from '../../lib/model/service.js';
import { hostsEntries } from '../../lib/names/service-names.js';
import { serviceSpec } from '../helpers/service-spec.js';

function svc(namespace: string, name: string, clusterIPs: string[]): ServiceSpec {
  return serviceSpec({ namespace, name, clusterIPs });
}

test('the full name first (the canonical one), then service.ns, then the bare name', (t) => {
  t.deepEqual(hostsEntries([svc('shop', 'web', ['127.1.0.5'])], 'cluster.local'), [{ ip: '127.1.0.5', names: ['web.shop.svc.cluster.local', 'web.shop', 'web'] }]);
});

test('the zone is --cluster-domain', (t) => {
  t.deepEqual(hostsEntries([svc('shop', 'web', ['10.0.0.1'])], 'corp.example')[0]!.names[0], 'web.shop.svc.corp.example');
});

test('a name in two namespaces gets no bare name: either would be a guess', (t) => {
  const entries = hostsEntries([svc('shop', 'web', ['127.1.0.5']), svc('blog', 'web', ['127.1.0.6']), svc('shop', 'db', ['127.1.0.7'])], 'cluster.local');
  t.deepEqual(entries, [
    { ip: '127.1.0.6', names: ['web.blog.svc.cluster.local', 'web.blog'] },
    { ip: '127.1.0.7', names: ['db.shop.svc.cluster.local', 'db.shop', 'db'] },
    { ip: '127.1.0.5', names: ['web.shop.svc.cluster.local', 'web.shop'] },
  ]);
});

test('a dual-stack service gets a line per address', (t) => {
  t.deepEqual(
    hostsEntries([svc('shop', 'web', ['10.0.0.1', 'fd00::1'])], 'cluster.local').map((e) => e.ip),
    ['10.0.0.1', 'fd00::1'],
  );
});
