import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ManifestSource } from '../../lib/source/manifest-source.js';
import type { ServiceSpec } from '../../lib/model/service.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { captureLogs } from '../helpers/log-capture.js';
import { waitFor } from '../helpers/wait-for.js';

const logs = captureLogs();
test.after.always(() => logs.close());

test('a manifest object with fields its kind does not have gets one warning naming them; it is still served', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'kup-unknown-fields-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const misspelt = serviceYaml('web', '10.0.0.1', [{ name: 'http', port: 80 }])
    .replace('      protocol: TCP', '      protocl: UDP')
    .replace('spec:', 'spec:\n  sesionAffinity: ClientIP');
  const slice = sliceYaml('web', 'web-1', [{ name: 'http', port: 8080 }], [{ ip: '10.1.0.1' }]).replace('    conditions:', '    zones: [a]\n    conditions:');
  const clean = serviceYaml('db', '10.0.0.2', [{ name: 'pg', port: 5432 }]);
  await fs.writeFile(path.join(dir, 'web.yaml'), `${misspelt}---\n${slice}---\n${clean}`);
  const services = new Map<string, ServiceSpec>();
  let synced = false;
  const source = new ManifestSource({ paths: [dir], rescanIntervalMs: 0 });
  t.teardown(() => source.close());
  await source.start({
    onServiceChange: (key, _previous, current) => void (current ? services.set(key, current) : services.delete(key)),
    onEndpointSliceChange: () => undefined,
    onSynced: () => void (synced = true),
  });
  await waitFor('the first sync', () => synced);
  const file = path.join(dir, 'web.yaml');
  const warnings = logs.entries.filter((e) => e.message === 'unknown fields in manifest object' && e['file'] === file);
  t.deepEqual(
    warnings.map((w) => [w.level, w['object'], w['document'], w['fields']]),
    [
      ['warn', 'Service default/web', 1, 'spec.sesionAffinity,spec.ports[0].protocl'],
      ['warn', 'EndpointSlice default/web-1', 2, 'endpoints[0].zones'],
    ],
  );
  // Warned, not rejected: the misspelt protocol means the default, TCP, as it always did.
  t.is(services.get('default/web')?.ports[0]?.protocol, 'TCP');
  t.false(logs.entries.some((e) => e.message === 'unknown fields in manifest object' && e['object'] === 'Service default/db'));
});
