// Adding meshlite as the last plugin of the primary network, and taking it out again: pure edits of configuration files.

import { isDeepStrictEqual } from 'node:util';
import { type ConfigFile, loadableNames, type NetworkConfig, parseNetworkConfig, sortsFirst } from './conf-files.ts';
import { isSupportedVersion, SUPPORTED_VERSIONS } from './cni-version.ts';

/** What to do to the configuration directory; the installer carries it out (write first, then remove). */
export type ConfigEdit =
  | { kind: 'unchanged'; file: string }
  | { kind: 'change'; write: ConfigFile | null; remove: string | null; summary: string }
  | { kind: 'refuse'; file: string; reason: string };

/** The installer's note in meshlite's entry that the primary network was a single-plugin file of this name. */
export const CONVERTED_FROM = 'convertedFrom';

function render(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * The versions a runtime may choose for this network (cniVersion, and the 1.1.0 cniVersions list): meshlite must
 * support every one of them, or a runtime would call it in a version it refuses and no pod would start.
 */
function unsupportedVersions(config: Record<string, unknown>): string[] {
  const declared = [config.cniVersion, ...(Array.isArray(config.cniVersions) ? config.cniVersions : [])];
  return declared.filter((version) => !isSupportedVersion(version)).map((version) => JSON.stringify(version ?? null));
}

function versionRefusal(file: ConfigFile, config: Record<string, unknown>): ConfigEdit | null {
  const unsupported = unsupportedVersions(config);
  if (unsupported.length === 0) return null;
  return {
    kind: 'refuse',
    file: file.name,
    reason: `the network declares cniVersion ${unsupported.join(', ')}; meshlite supports ${SUPPORTED_VERSIONS.join(', ')}, so it is not added`,
  };
}

/**
 * meshlite's entry, last in the plugin list, once: other meshlite entries are dropped, an entry that differs from
 * `entry` is replaced (a settings change), and a list that already ends with it is left as it is, byte for byte. A
 * single-plugin file becomes a list of the same name with the `.conflist` extension (the runtime must see one
 * network, so the old file goes), unless that would stop it from being the primary network or clobber a list that
 * is not meshlite's. `directory` is every file of the configuration directory.
 */
export function addMeshlite(file: ConfigFile, config: NetworkConfig, entry: Record<string, unknown>, directory: readonly ConfigFile[]): ConfigEdit {
  const type = entry.type;
  if (config.kind === 'list') {
    const refusal = versionRefusal(file, config.list);
    if (refusal !== null) return refusal;
    const previous = config.plugins.find((plugin) => plugin.type === type);
    const note = previous !== undefined && typeof previous[CONVERTED_FROM] === 'string' ? { [CONVERTED_FROM]: previous[CONVERTED_FROM] } : {};
    const plugins = [...config.plugins.filter((plugin) => plugin.type !== type), { ...entry, ...note }];
    if (isDeepStrictEqual(plugins, config.plugins)) return { kind: 'unchanged', file: file.name };
    return {
      kind: 'change',
      write: { name: file.name, text: render({ ...config.list, plugins }) },
      remove: null,
      summary: previous === undefined ? `meshlite added to ${file.name}` : `meshlite entry of ${file.name} updated`,
    };
  }
  const refusal = versionRefusal(file, config.conf);
  if (refusal !== null) return refusal;
  const listName = `${file.name.slice(0, file.name.lastIndexOf('.'))}.conflist`;
  const others = loadableNames(directory).filter((name) => name !== file.name);
  const existing = directory.find((other) => other.name === listName);
  if (existing !== undefined && !isMeshliteConversion(existing, type)) {
    // A list left by an earlier conversion (the network plugin rewrote its .conf since) is ours to replace; no other.
    return { kind: 'refuse', file: file.name, reason: `${listName} exists and is not meshlite's conversion; converting ${file.name} would replace it` };
  }
  if (!sortsFirst(listName, [...others, listName])) {
    return { kind: 'refuse', file: file.name, reason: `${listName} would not sort first, so converting ${file.name} would change the primary network` };
  }
  const list = { cniVersion: config.conf.cniVersion, name: config.conf.name, plugins: [config.conf, { ...entry, [CONVERTED_FROM]: file.name }] };
  return { kind: 'change', write: { name: listName, text: render(list) }, remove: file.name, summary: `${file.name} converted to ${listName} with meshlite` };
}

/** Whether a file is a list the installer made from a single-plugin file (meshlite's entry notes where it came from). */
function isMeshliteConversion(file: ConfigFile, type: unknown): boolean {
  const config = parseNetworkConfig(file);
  return config?.kind === 'list' && config.plugins.some((plugin) => plugin.type === type && typeof plugin[CONVERTED_FROM] === 'string');
}

/**
 * The list without meshlite's entries. When the installer had converted a single-plugin file and that plugin is all
 * that is left, the file is restored under its old name, so that the network plugin that owns it finds it where it
 * wrote it; if it has written it again since, the list is only removed.
 */
export function removeMeshlite(file: ConfigFile, config: NetworkConfig, type: string, directory: readonly ConfigFile[]): ConfigEdit {
  if (config.kind !== 'list') return { kind: 'unchanged', file: file.name };
  const ours = config.plugins.filter((plugin) => plugin.type === type);
  if (ours.length === 0) return { kind: 'unchanged', file: file.name };
  const plugins = config.plugins.filter((plugin) => plugin.type !== type);
  if (plugins.length === 0) return { kind: 'refuse', file: file.name, reason: 'meshlite is the only plugin of this list; it is left for an operator to remove' };
  const convertedFrom = ours.map((plugin) => plugin[CONVERTED_FROM]).find((name) => typeof name === 'string');
  const original = plugins[0];
  if (typeof convertedFrom === 'string' && plugins.length === 1 && original !== undefined && !convertedFrom.includes('/')) {
    if (loadableNames(directory).includes(convertedFrom)) return { kind: 'change', write: null, remove: file.name, summary: `${file.name} removed: ${convertedFrom} is back` };
    // The plugin entry kept its own cniVersion and name when it was converted; a hand-made list's may lack them.
    const conf = 'cniVersion' in original && 'name' in original ? original : { cniVersion: config.list.cniVersion, name: config.list.name, ...original };
    return { kind: 'change', write: { name: convertedFrom, text: render(conf) }, remove: file.name, summary: `${file.name} restored to ${convertedFrom}` };
  }
  return { kind: 'change', write: { name: file.name, text: render({ ...config.list, plugins }) }, remove: null, summary: `meshlite removed from ${file.name}` };
}
