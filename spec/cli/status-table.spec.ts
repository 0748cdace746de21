import test from 'ava';
import { formatStatusTable } from '../../lib/cli/status-table.js';
import { STATUS_FIXTURE } from './status-fixture.js';

test('the ipvsadm-like table of a known state, exactly', (t) => {
  t.is(
    formatStatusTable(STATUS_FIXTURE),
    [
      'kube-userspace-proxy: redirect iptables, UNHEALTHY (1 listener failed to open), last sync 2024-05-01T10:00:00.000Z',
      '2 services, 3 service ports, 4 endpoints',
      'source: kubernetes, connected, last contact 2024-05-01T10:00:04.000Z, 1 informer restart',
      'Prot Service port                     Portals                             ProxyPort Scheduler Affinity',
      '  -> Endpoint                         ActiveConn TotalConn Failures',
      'UDP  default/web:dns                  10.96.0.10:53                       41235     rr        None',
      '  -> 10.244.1.5:53                    2          5         0',
      'TCP  default/web:http                 10.96.0.10:80,192.0.2.50:80,*:30080 41234     rr        ClientIP 10800s',
      '  -> 10.244.1.5:8080                  1          3         0',
      '  -> 10.244.2.7:8080                  0          2         1',
      '  -> 10.244.3.9:8080                  4          12        0        removed',
      'TCP  kube-system/metrics-server:https 10.96.0.20:443                      -         rr        None',
      '     ! port conflict: 0.0.0.0:41236 is already in use by another socket',
      '  -> (no endpoints)',
      '',
    ].join('\n'),
  );
});

test('a healthy agent with no service port and no API source: the header lines only', (t) => {
  const doc = { ...STATUS_FIXTURE, healthy: true, reasons: [], redirectMode: 'none', lastUpdated: null, source: null, counts: { services: 0, servicePorts: 0, endpoints: 0 }, servicePorts: [] };
  t.is(
    formatStatusTable(doc),
    [
      'kube-userspace-proxy: redirect none, healthy, last sync never',
      '0 services, 0 service ports, 0 endpoints',
      'Prot Service port Portals ProxyPort Scheduler Affinity',
      '  -> Endpoint     ActiveConn TotalConn Failures',
      '',
    ].join('\n'),
  );
});

test('no line ends in a space', (t) => {
  for (const line of formatStatusTable(STATUS_FIXTURE).split('\n')) t.is(line, line.trimEnd());
});
