/** One backend of a service port: an IP and a port, as the data path dials it. */
export interface Endpoint {
  readonly ip: string;
  readonly port: number;
  /** `ip:port`, or `[ip]:port` for IPv6: identity for comparisons, affinity and logs. */
  readonly key: string;
  /** Node the endpoint runs on, '' when unknown. */
  readonly nodeName: string;
  /**
   * The Pod behind this address (from the endpoint's `targetRef` of kind Pod), for dialing through
   * the API server's port-forward; undefined when the endpoint names no Pod.
   */
  readonly pod?: PodRef | undefined;
}

/** A Pod by namespace and name. */
export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

export function makeEndpoint(ip: string, port: number, nodeName = '', pod?: PodRef): Endpoint {
  // Joined: one flat string of about 40 bytes, where a template kept a cons string and its parts,
  // about 150 (see servicePortName); every port holds its endpoints' keys.
  const key = ip.includes(':') ? ['[', ip, ']:', String(port)].join('') : [ip, ':', String(port)].join('');
  return pod === undefined ? { ip, port, key, nodeName } : { ip, port, key, nodeName, pod };
}
