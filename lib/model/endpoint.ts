/** One backend of a service port: an IP and a port, as the data path dials it. */
export interface Endpoint {
  readonly ip: string;
  readonly port: number;
  /** `ip:port`, or `[ip]:port` for IPv6: identity for comparisons, affinity and logs. */
  readonly key: string;
  /** Node the endpoint runs on, '' when unknown. */
  readonly nodeName: string;
}

export function makeEndpoint(ip: string, port: number, nodeName = ''): Endpoint {
  const key = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
  return { ip, port, key, nodeName };
}
