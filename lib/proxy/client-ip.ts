/**
 * The client address used for ClientIP affinity. A dual-stack listener ('::') reports IPv4 clients
 * as `::ffff:a.b.c.d`; unwrapping them keeps one pin per client whichever listener it came through.
 */
export function clientIP(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return '';
  // Cheap prefix test first: this runs for every connection and UDP session.
  if (remoteAddress.charCodeAt(0) === 58 /* ':' */ && remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.')) {
    return remoteAddress.slice(7);
  }
  return remoteAddress;
}
