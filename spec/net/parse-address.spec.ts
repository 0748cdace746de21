import test from 'ava';
import { InvalidConfigError } from '../../lib/errors.js';
import { parseAddress } from '../../lib/net/parse-address.js';

const good: Array<[string, { host: string; port: number }]> = [
  ['0.0.0.0:10256', { host: '0.0.0.0', port: 10256 }],
  ['127.0.0.1:10249', { host: '127.0.0.1', port: 10249 }],
  ['[::1]:10249', { host: '::1', port: 10249 }],
  ['[::]:0', { host: '::', port: 0 }],
  ['[fd00::10:96:0:1]:65535', { host: 'fd00::10:96:0:1', port: 65535 }],
  ['localhost:10249', { host: 'localhost', port: 10249 }],
  ['metrics.kube-system.svc:9000', { host: 'metrics.kube-system.svc', port: 9000 }],
];

for (const [text, want] of good) {
  test(`parses ${text}`, (t) => {
    t.deepEqual(parseAddress(text), want);
  });
}

const bad: Array<[string, string]> = [
  ['', 'must not be empty'],
  ['127.0.0.1', 'missing ":PORT"'],
  ['127.0.0.1:', 'missing PORT after ":"'],
  [':10249', 'missing HOST before ":"'],
  ['127.0.0.1:http', 'port "http" is not a number'],
  ['127.0.0.1:65536', 'port 65536 is out of range 0-65535'],
  ['127.0.0.1:-1', 'port "-1" is not a number'],
  ['::1:10249', 'an IPv6 address must be written in brackets'],
  ['[::1:10249', 'missing "]" after an IPv6 address'],
  ['[::1]10249', 'missing ":PORT" after "]"'],
  ['[127.0.0.1]:80', '"127.0.0.1" is not an IPv6 address'],
  ['999.1.1.1:80', '"999.1.1.1" is not an IPv4 address'],
  ['bad_host:80', '"bad_host" is neither an IP address nor a host name'],
];

for (const [text, why] of bad) {
  test(`refuses ${JSON.stringify(text)}: ${why}`, (t) => {
    const err = t.throws(() => parseAddress(text, '--metrics-bind-address'), { instanceOf: InvalidConfigError });
    t.deepEqual(err?.problems, [`--metrics-bind-address: ${why}, got ${JSON.stringify(text)}; expected HOST:PORT, e.g. 127.0.0.1:10249 or [::1]:10249`]);
  });
}
