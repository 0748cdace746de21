import test from 'ava';
import { formatHostPort } from '../../lib/net/host-port.js';

const cases: Array<[string, number, string]> = [
  ['127.0.0.1', 80, '127.0.0.1:80'],
  ['::1', 10249, '[::1]:10249'],
  ['::', 0, '[::]:0'],
  ['fd00::10:96:0:1', 65535, '[fd00::10:96:0:1]:65535'],
  ['localhost', 10256, 'localhost:10256'],
];

for (const [host, port, want] of cases) {
  test(`formats ${host} and ${port} as ${want}`, (t) => {
    t.is(formatHostPort(host, port), want);
  });
}
