// The CNI configuration directory as a runtime reads it: which files count, how they parse, and which one is the primary network.

/** A file of the configuration directory, by name, with its content. */
export interface ConfigFile {
  name: string;
  text: string;
}

export type NetworkConfig =
  | { kind: 'list'; list: Record<string, unknown>; plugins: Record<string, unknown>[] }
  | { kind: 'single'; conf: Record<string, unknown> };

/** The extensions libcni loads (kubelet, containerd and CRI-O all go through it): a list, or a single plugin. */
const LIST_EXTENSION = '.conflist';
const SINGLE_EXTENSIONS = ['.conf', '.json'];

export function isConfigFileName(name: string): boolean {
  return !name.startsWith('.') && (name.endsWith(LIST_EXTENSION) || SINGLE_EXTENSIONS.some((extension) => name.endsWith(extension)));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A file's network configuration, or null when a runtime could not load it either: not JSON, a list without a name
 * or without plugins, a plugin without a type. A `.conf` or `.json` file holds one plugin configuration.
 */
export function parseNetworkConfig(file: ConfigFile): NetworkConfig | null {
  let value: unknown;
  try {
    value = JSON.parse(file.text);
  } catch {
    return null;
  }
  if (!isObject(value) || typeof value.name !== 'string' || value.name === '') return null;
  if (file.name.endsWith(LIST_EXTENSION)) {
    const { plugins } = value;
    if (!Array.isArray(plugins) || plugins.length === 0) return null;
    if (!plugins.every((plugin) => isObject(plugin) && typeof plugin.type === 'string' && plugin.type !== '')) return null;
    return { kind: 'list', list: value, plugins: plugins as Record<string, unknown>[] };
  }
  if (typeof value.type !== 'string' || value.type === '') return null;
  return { kind: 'single', conf: value };
}

/** Byte order, as Go's sort.Strings orders the names libcni returns (the same as JavaScript's for ASCII names). */
function byName(a: ConfigFile, b: ConfigFile): number {
  return Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
}

/**
 * The primary network: the first configuration file in name order that a runtime can load (kubelet's runtime uses
 * the first one it loads and skips the ones it cannot). Null when there is none yet, e.g. before the cluster's
 * network plugin wrote its file.
 */
export function primaryConfig(files: readonly ConfigFile[]): { file: ConfigFile; config: NetworkConfig } | null {
  for (const file of [...files].filter((f) => isConfigFileName(f.name)).sort(byName)) {
    const config = parseNetworkConfig(file);
    if (config !== null) return { file, config };
  }
  return null;
}

/** Whether `name` comes before every other of `names` (the loadable files): whether a runtime would take it as primary. */
export function sortsFirst(name: string, names: readonly string[]): boolean {
  const key = Buffer.from(name);
  return names.every((other) => other === name || Buffer.compare(key, Buffer.from(other)) < 0);
}

/** The names of the files a runtime can load, for sortsFirst. */
export function loadableNames(files: readonly ConfigFile[]): string[] {
  return files.filter((file) => isConfigFileName(file.name) && parseNetworkConfig(file) !== null).map((file) => file.name);
}
