// Which file is the primary network, and the pure edits that add meshlite last and take it out again.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ConfigFile, parseNetworkConfig, primaryConfig } from '../../cni/conf-files.ts';
import { addMeshlite, type ConfigEdit, removeMeshlite } from '../../cni/conflist-edit.ts';

const entry = { agentSocket: '/run/meshlite/cni.sock', failPolicy: 'open', type: 'meshlite' };
const bridge = { type: 'bridge', bridge: 'cni0', isDefaultGateway: true, ipam: { type: 'host-local', subnet: '10.78.0.0/24' } };
const portmap = { type: 'portmap', capabilities: { portMappings: true } };

function file(name: string, value: unknown): ConfigFile {
  return { name, text: JSON.stringify(value) };
}

function list(plugins: unknown[], cniVersion = '1.0.0'): Record<string, unknown> {
  return { cniVersion, name: 'k8s-pod-network', plugins };
}

function add(target: ConfigFile, directory: ConfigFile[] = [target]): ConfigEdit {
  const config = parseNetworkConfig(target);
  assert.ok(config !== null);
  return addMeshlite(target, config, entry, directory);
}

function written(edit: ConfigEdit): { name: string; value: unknown; remove: string | null } {
  assert.equal(edit.kind, 'change', JSON.stringify(edit));
  if (edit.kind !== 'change' || edit.write === null) assert.fail('expected a write');
  assert.ok(edit.write.text.endsWith('\n'));
  return { name: edit.write.name, value: JSON.parse(edit.write.text), remove: edit.remove };
}

test('the primary network is the first loadable .conflist/.conf/.json in byte order', () => {
  const files = [
    file('20-b.conflist', list([bridge])),
    file('10-broken.conflist', '{'),
    { name: '05-not-json.conf', text: 'nope' },
    file('07-empty.conflist', list([])),
    file('08-no-type.conf', { cniVersion: '1.0.0', name: 'x' }),
    file('.00-hidden.conflist', list([bridge])),
    file('00-backup.conflist.bak', list([bridge])),
    file('15-a.json', { cniVersion: '1.0.0', name: 'a', type: 'bridge' }),
    file('Z-upper.conflist', list([bridge])),
  ];
  assert.equal(primaryConfig(files)?.file.name, '15-a.json');
  assert.equal(primaryConfig(files.filter((f) => f.name !== '15-a.json'))?.file.name, '20-b.conflist');
  assert.equal(primaryConfig([...files, file('10-z.conf', { cniVersion: '1.0.0', name: 'z', type: 'ptp' })])?.file.name, '10-z.conf');
  // Byte order: upper case sorts before lower case, as Go's sort.Strings has it.
  assert.equal(primaryConfig([file('a.conflist', list([bridge])), file('B.conflist', list([bridge]))])?.file.name, 'B.conflist');
  assert.equal(primaryConfig([]), null);
});

test('meshlite goes last in a list, once; a second pass changes nothing', () => {
  const original = file('10-net.conflist', list([bridge, portmap]));
  const first = written(add(original));
  assert.deepEqual(first, { name: '10-net.conflist', value: list([bridge, portmap, entry]), remove: null });
  const again = { name: first.name, text: JSON.stringify(first.value) };
  assert.deepEqual(add(again), { kind: 'unchanged', file: '10-net.conflist' });
});

test('a meshlite entry elsewhere, twice, or with other settings is put right', () => {
  const stale = { ...entry, failPolicy: 'closed' };
  assert.deepEqual(written(add(file('10-net.conflist', list([entry, bridge])))).value, list([bridge, entry]));
  assert.deepEqual(written(add(file('10-net.conflist', list([bridge, entry, portmap, entry])))).value, list([bridge, portmap, entry]));
  const edit = add(file('10-net.conflist', list([bridge, stale])));
  assert.deepEqual(written(edit).value, list([bridge, entry]));
  assert.equal(edit.kind === 'change' && edit.summary, 'meshlite entry of 10-net.conflist updated');
  // Key order alone is no change: the file is not rewritten.
  const reordered = { failPolicy: 'open', type: 'meshlite', agentSocket: '/run/meshlite/cni.sock' };
  assert.equal(add(file('10-net.conflist', list([bridge, reordered]))).kind, 'unchanged');
});

test('a network in a version meshlite does not speak is left alone', () => {
  for (const config of [list([bridge], '0.3.1'), { ...list([bridge]), cniVersion: undefined }, { ...list([bridge], '1.0.0'), cniVersions: ['1.0.0', '1.2.0'] }]) {
    const edit = add(file('10-net.conflist', config));
    assert.equal(edit.kind, 'refuse', JSON.stringify(config));
    assert.match(edit.kind === 'refuse' ? edit.reason : '', /meshlite supports 0\.4\.0, 1\.0\.0, 1\.1\.0/);
  }
  assert.equal(add(file('10-net.conf', { cniVersion: '0.3.0', name: 'n', type: 'bridge' })).kind, 'refuse');
  assert.equal(add(file('10-net.conflist', { ...list([bridge], '1.1.0'), cniVersions: ['1.0.0', '1.1.0'] })).kind, 'change');
});

test('a single-plugin .conf becomes a .conflist of the same name, and the .conf goes', () => {
  const conf = { cniVersion: '0.4.0', name: 'mynet', ...bridge };
  const edit = add(file('10-mynet.conf', conf));
  assert.deepEqual(written(edit), {
    name: '10-mynet.conflist',
    value: { cniVersion: '0.4.0', name: 'mynet', plugins: [conf, { ...entry, convertedFrom: '10-mynet.conf' }] },
    remove: '10-mynet.conf',
  });
  assert.equal(written(add(file('10-mynet.json', conf))).name, '10-mynet.conflist');
});

test('a conversion replaces its own earlier list, never another network, and keeps the network primary', () => {
  const conf = file('10-mynet.conf', { cniVersion: '1.0.0', name: 'mynet', ...bridge });
  const ours = file('10-mynet.conflist', list([bridge, { ...entry, convertedFrom: '10-mynet.conf' }]));
  assert.equal(written(add(conf, [conf, ours])).name, '10-mynet.conflist');
  const theirs = file('10-mynet.conflist', list([bridge]));
  const refused = add(conf, [conf, theirs]);
  assert.equal(refused.kind, 'refuse');
  assert.match(refused.kind === 'refuse' ? refused.reason : '', /not meshlite's conversion/);
  // '10-mynet.conf-old.json' sorts between '10-mynet.conf' and '10-mynet.conflist': converting would demote the network.
  const between = file('10-mynet.conf-old.json', { cniVersion: '1.0.0', name: 'old', type: 'ptp' });
  assert.match(JSON.stringify(add(conf, [conf, between])), /would not sort first/);
});

test('removal restores a converted .conf as it was, or only drops the list when the .conf is back', () => {
  const conf = { cniVersion: '0.4.0', name: 'mynet', ...bridge };
  const original = file('10-mynet.conf', conf);
  const converted = written(add(original));
  const listFile = { name: converted.name, text: JSON.stringify(converted.value) };
  const parsed = parseNetworkConfig(listFile);
  assert.ok(parsed !== null);
  const restored = written(removeMeshlite(listFile, parsed, 'meshlite', [listFile]));
  assert.deepEqual(restored, { name: '10-mynet.conf', value: conf, remove: '10-mynet.conflist' });
  assert.deepEqual(removeMeshlite(listFile, parsed, 'meshlite', [listFile, original]), {
    kind: 'change',
    write: null,
    remove: '10-mynet.conflist',
    summary: '10-mynet.conflist removed: 10-mynet.conf is back',
  });
});

test('removal from a list keeps every other plugin; no meshlite is no change; meshlite alone is left', () => {
  const withMeshlite = file('10-net.conflist', list([bridge, portmap, entry]));
  const parsed = parseNetworkConfig(withMeshlite);
  assert.ok(parsed !== null);
  assert.deepEqual(written(removeMeshlite(withMeshlite, parsed, 'meshlite', [withMeshlite])), { name: '10-net.conflist', value: list([bridge, portmap]), remove: null });
  const without = file('10-net.conflist', list([bridge]));
  assert.deepEqual(removeMeshlite(without, parseNetworkConfig(without) ?? assert.fail(), 'meshlite', [without]), { kind: 'unchanged', file: '10-net.conflist' });
  const alone = file('10-net.conflist', list([entry]));
  assert.equal(removeMeshlite(alone, parseNetworkConfig(alone) ?? assert.fail(), 'meshlite', [alone]).kind, 'refuse');
});
