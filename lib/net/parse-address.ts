import net from 'node:net';
import { InvalidConfigError } from '../errors.js';
import type { HostPort } from './host-port.js';

/** A DNS name: dot-separated labels of letters, digits and inner hyphens. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * Parses `HOST:PORT` as the --healthz-bind-address, --metrics-bind-address and --metrics-address
 * flags take it: `0.0.0.0:10256`, `127.0.0.1:10249`, `[::1]:10249`, `localhost:10249`.
 * `what` names the flag in the error. Throws InvalidConfigError with one precise problem.
 */
export function parseAddress(text: string, what = 'address'): HostPort {
  const fail: (why: string) => never = (why) => {
    throw new InvalidConfigError([`${what}: ${why}, got ${JSON.stringify(text)}; expected HOST:PORT, e.g. 127.0.0.1:10249 or [::1]:10249`]);
  };
  if (typeof text !== 'string' || text === '') fail('must not be empty');
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) fail('missing "]" after an IPv6 address');
    host = text.slice(1, close);
    if (net.isIPv6(host) === false) fail(`"${host}" is not an IPv6 address`);
    if (text[close + 1] !== ':') fail('missing ":PORT" after "]"');
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) fail('missing ":PORT"');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) fail('an IPv6 address must be written in brackets');
    if (host === '') fail('missing HOST before ":"');
    if (net.isIPv4(host) === false && !HOST_NAME.test(host)) fail(`"${host}" is neither an IP address nor a host name`);
    // A dotted-quad look-alike that is not a valid IPv4 address (999.1.1.1) is a typo, not a name.
    if (/^[\d.]+$/.test(host) && net.isIPv4(host) === false) fail(`"${host}" is not an IPv4 address`);
  }
  if (!/^\d{1,5}$/.test(portText)) fail(portText === '' ? 'missing PORT after ":"' : `port "${portText}" is not a number`);
  const port = Number(portText);
  if (port > 65_535) fail(`port ${port} is out of range 0-65535`);
  return { host, port };
}
