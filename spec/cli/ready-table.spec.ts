import test from 'ava';
import type { PortStatus } from '../../lib/agent/agent.js';
import { formatReadyTable } from '../../lib/cli/ready-table.js';
import { servicePortName } from '../../lib/model/service-port-name.js';

function port(ns: string, name: string, portName: string, portals: string[], endpoints: string[], protocol = 'TCP', error?: string): PortStatus {
  return {
    spn: servicePortName(ns, name, portName),
    protocol,
    listening: [],
    endpoints,
    portals,
    nodePort: 0,
    proxyPort: 0,
    scheduler: 'rr',
    affinity: { type: 'None', timeoutSeconds: 0 },
    error,
    stats: undefined,
  };
}

const dns = { host: '127.0.0.1', port: 1053 };

test('one row per Service, sorted by name: full name, address with its ports, endpoints; then the dig to try and where names are', (t) => {
  const text = formatReadyTable({
    ports: [
      port('shop', 'web', 'http', ['127.1.124.57:8080'], ['10.0.0.1:80', '10.0.0.2:80']),
      port('shop', 'orders', 'http', ['127.1.223.142:8080'], ['10.0.0.3:9002']),
      port('shop', 'web', 'metrics', ['127.1.124.57:9090'], ['10.0.0.1:9090', '10.0.0.2:9090']),
      port('shop', 'web', 'dns', ['127.1.124.57:53'], ['10.0.0.1:53', '10.0.0.2:53'], 'UDP'),
    ],
    clusterDomain: 'cluster.local',
    dns,
    hostsFile: undefined,
  });
  t.is(
    text,
    [
      'NAME                           ADDRESS                        ENDPOINTS',
      'orders.shop.svc.cluster.local  127.1.223.142:8080             1 endpoint',
      'web.shop.svc.cluster.local     127.1.124.57:8080,9090,53/UDP  2 endpoints',
      '',
      'try: dig @127.0.0.1 -p 1053 orders.shop.svc.cluster.local',
      'names: use the DNS server at 127.0.0.1:1053 or run with sudo for /etc/hosts',
      '',
    ].join('\n'),
  );
});

test('with a hosts file it says so; a port that did not open is a "!" line with the reason; the zone is --cluster-domain', (t) => {
  const text = formatReadyTable({
    ports: [port('a', 'db', 'sql', ['127.1.0.9:5432'], [], 'TCP', 'listen EADDRINUSE')],
    clusterDomain: 'corp.example',
    dns: { host: '0.0.0.0', port: 53 },
    hostsFile: '/etc/hosts',
  });
  t.regex(text, /^db\.a\.svc\.corp\.example  127\.1\.0\.9:5432  0 endpoints$/m);
  t.regex(text, /^! a\/db:sql \(TCP\): listen EADDRINUSE$/m);
  t.regex(text, /^try: dig @127\.0\.0\.1 db\.a\.svc\.corp\.example$/m, 'a wildcard is dialed at loopback; port 53 needs no -p');
  t.regex(text, /^names: in \/etc\/hosts too/m);
  t.notRegex(text, /sudo/);
});

test('a port below 1024 that an ordinary user cannot listen on gets the reason and what to do', (t) => {
  const text = formatReadyTable({
    ports: [port('shop', 'web', 'http', ['127.1.124.57:80'], ['10.0.0.1:8080'], 'TCP', 'cannot listen on 127.1.124.57:80: listen EACCES: permission denied 127.1.124.57:80')],
    clusterDomain: 'cluster.local',
    dns,
    hostsFile: undefined,
  });
  t.regex(text, /^! shop\/web:http \(TCP\): cannot listen on 127\.1\.124\.57:80: listen EACCES/m);
  t.regex(text, /^  ports below 1024 need root: run with sudo, or allow every user once: sudo sysctl -w net\.ipv4\.ip_unprivileged_port_start=0$/m);
});

test('no Services yet and no DNS server: says what to check and how to connect', (t) => {
  const text = formatReadyTable({ ports: [], clusterDomain: 'cluster.local', dns: undefined, hostsFile: undefined });
  t.regex(text, /^No Services to serve yet/);
  t.notRegex(text, /dig/);
  t.regex(text, /^names: none/m);
});
