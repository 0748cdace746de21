import type { StatusDocument, ServicePortStatusJson } from '../../lib/server/status-document.js';

const zero = { active: 0, total: 0, bytesIn: 0, bytesOut: 0, dialFailures: 0, dialRetries: 0, dialGiveUps: 0, noEndpointRejections: 0, udpEvictions: 0 };

function port(p: Partial<ServicePortStatusJson> & Pick<ServicePortStatusJson, 'servicePort' | 'protocol'>): ServicePortStatusJson {
  return { portals: [], listening: [], proxyPort: 0, nodePort: 0, scheduler: 'rr', affinity: { type: 'None', timeoutSeconds: 10800 }, error: null, stats: zero, endpoints: [], ...p };
}

/** A known agent state: an iptables-mode node with a web service (TCP with a node port, UDP) and a port that failed to open. */
export const STATUS_FIXTURE: StatusDocument = {
  redirectMode: 'iptables',
  healthy: false,
  reasons: ['1 listener failed to open'],
  draining: false,
  lastUpdated: '2024-05-01T10:00:00.000Z',
  currentTime: '2024-05-01T10:00:05.000Z',
  counts: { services: 2, servicePorts: 3, endpoints: 4 },
  source: { connected: true, lastSuccess: '2024-05-01T10:00:04.000Z', lastError: null, informerRestarts: 1 },
  servicePorts: [
    port({
      servicePort: 'default/web:dns',
      protocol: 'UDP',
      portals: ['10.96.0.10:53'],
      listening: ['0.0.0.0:41235'],
      proxyPort: 41235,
      endpoints: [{ endpoint: '10.244.1.5:53', active: 2, total: 5, dialFailures: 0, inRotation: true }],
    }),
    port({
      servicePort: 'default/web:http',
      protocol: 'TCP',
      portals: ['10.96.0.10:80', '192.0.2.50:80'],
      listening: ['0.0.0.0:41234'],
      proxyPort: 41234,
      nodePort: 30080,
      affinity: { type: 'ClientIP', timeoutSeconds: 10800 },
      endpoints: [
        { endpoint: '10.244.1.5:8080', active: 1, total: 3, dialFailures: 0, inRotation: true },
        { endpoint: '10.244.2.7:8080', active: 0, total: 2, dialFailures: 1, inRotation: true },
        { endpoint: '10.244.3.9:8080', active: 4, total: 12, dialFailures: 0, inRotation: false },
      ],
    }),
    port({
      servicePort: 'kube-system/metrics-server:https',
      protocol: 'TCP',
      portals: ['10.96.0.20:443'],
      error: 'port conflict: 0.0.0.0:41236 is already in use by another socket',
      stats: null,
    }),
  ],
};
