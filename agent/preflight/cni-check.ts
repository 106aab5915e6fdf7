// Preflight: the CNI directories the installer works in, the primary network it would change, and whether meshlite is chained in it.

import { type ConfigFile, isConfigFileName, primaryConfig } from '../../cni/conf-files.ts';
import { addMeshlite } from '../../cni/conflist-edit.ts';
import { type CheckLine, fail, firstLine, ok } from './check-result.ts';

/** What the check reads of the file system, injected so that tests use temp dirs or fakes. */
export interface FileAccess {
  /** The names in a directory; rejects (ENOENT) when it does not exist. */
  list(directory: string): Promise<string[]>;
  read(path: string): Promise<string>;
  /** null when nothing is there. */
  stat(path: string): Promise<{ directory: boolean; executable: boolean } | null>;
}

export interface CniDirectories {
  readonly confDir: string;
  readonly binDir: string;
  /** The executable's name in binDir and its entry's `type` (the installer's --plugin-name). */
  readonly pluginName: string;
}

/** The installer's own defaults (cni/install-main.ts): the host's directories as the DaemonSet mounts them. */
export const DEFAULT_CNI_DIRECTORIES: CniDirectories = { confDir: '/host/etc/cni/net.d', binDir: '/host/opt/cni/bin', pluginName: 'meshlite' };

/** The directories from the installer's environment variables, as the installer reads them (empty counts as unset). */
export function cniDirectoriesFrom(env: Readonly<Record<string, string | undefined>>): CniDirectories {
  const value = (name: string, fallback: string): string => {
    const given = env[name];
    return given === undefined || given === '' ? fallback : given;
  };
  return {
    confDir: value('MESHLITE_CNI_CONF_DIR', DEFAULT_CNI_DIRECTORIES.confDir),
    binDir: value('MESHLITE_CNI_BIN_DIR', DEFAULT_CNI_DIRECTORIES.binDir),
    pluginName: value('MESHLITE_CNI_PLUGIN_NAME', DEFAULT_CNI_DIRECTORIES.pluginName),
  };
}

const MOUNT_CONF =
  "mount the host's CNI configuration directory (/etc/cni/net.d; k3s: /var/lib/rancher/k3s/agent/etc/cni/net.d) here, or set MESHLITE_CNI_CONF_DIR to where it is";
const MOUNT_BIN = "mount the host's CNI bin directory (/opt/cni/bin; GKE: /home/kubernetes/bin) here, or set MESHLITE_CNI_BIN_DIR to where it is";

/** Three lines: the configuration directory, the primary network (meshlite in it or not), the plugin executable. */
export async function checkCni(files: FileAccess, directories: CniDirectories): Promise<CheckLine[]> {
  const { confDir, binDir, pluginName } = directories;
  const lines: CheckLine[] = [];
  const confWhat = `CNI configuration directory ${confDir}`;
  const conf = await files.stat(confDir);
  let chainedIn: string | null = null;
  if (conf === null || !conf.directory) {
    lines.push(fail(confWhat, conf === null ? 'not found' : 'not a directory', MOUNT_CONF));
  } else {
    lines.push(ok(confWhat));
    const primary = await primaryNetwork(files, confDir, pluginName);
    lines.push(primary.line);
    chainedIn = primary.chainedIn;
  }
  const binWhat = `CNI bin directory ${binDir}`;
  const bin = await files.stat(binDir);
  if (bin === null || !bin.directory) {
    lines.push(fail(binWhat, bin === null ? 'not found' : 'not a directory', MOUNT_BIN));
    return lines;
  }
  const plugin = await files.stat(`${binDir}/${pluginName}`);
  if (plugin !== null && !plugin.directory && plugin.executable) lines.push(ok(`${binWhat}: the ${pluginName} plugin is installed`));
  else if (chainedIn !== null) {
    lines.push(
      fail(
        binWhat,
        `${pluginName} is chained in ${chainedIn} but ${binDir}/${pluginName} is ${plugin === null ? 'missing' : 'not an executable file'}, so every new pod's network setup fails`,
        "start the DaemonSet's cni-installer container (it copies the plugin), or take meshlite out of the network: node cni/install-main.ts uninstall",
      ),
    );
  } else lines.push(ok(`${binWhat}: the installer copies the ${pluginName} plugin there`));
  return lines;
}

async function primaryNetwork(files: FileAccess, confDir: string, pluginName: string): Promise<{ line: CheckLine; chainedIn: string | null }> {
  const what = `CNI primary network in ${confDir}`;
  let directory: ConfigFile[];
  try {
    directory = await readConfigFiles(files, confDir);
  } catch (error) {
    return { line: fail(what, `cannot read the directory (${firstLine(error)})`, MOUNT_CONF), chainedIn: null };
  }
  const primary = primaryConfig(directory);
  if (primary === null) {
    return {
      line: fail(what, 'no loadable network configuration yet', "install the cluster's network plugin first: meshlite chains itself into the network it configures"),
      chainedIn: null,
    };
  }
  const { file, config } = primary;
  const plugins = config.kind === 'list' ? config.plugins : [config.conf];
  if (config.kind === 'list' && plugins.at(-1)?.type === pluginName) {
    return { line: ok(`CNI primary network ${file.name}: ${pluginName} is chained, last of ${plugins.length} plugins`), chainedIn: file.name };
  }
  const edit = addMeshlite(file, config, { type: pluginName }, directory);
  if (edit.kind === 'refuse') {
    return { line: fail(`CNI primary network ${file.name}`, edit.reason, 'meshlite cannot enroll pods on this node; see cni/README.md for the networks it chains into'), chainedIn: null };
  }
  const how = edit.kind === 'change' ? edit.summary : `meshlite added to ${file.name}`;
  const present = plugins.some((plugin) => plugin.type === pluginName);
  const state = present ? 'is in the list but not last' : 'not chained yet';
  return { line: ok(`CNI primary network ${file.name}: ${pluginName} ${state}; the installer would change it (${how})`), chainedIn: present ? file.name : null };
}

/** The directory as a runtime reads it: config-like names only; a file gone or unreadable meanwhile is skipped. */
async function readConfigFiles(files: FileAccess, confDir: string): Promise<ConfigFile[]> {
  const result: ConfigFile[] = [];
  for (const name of (await files.list(confDir)).filter(isConfigFileName)) {
    try {
      result.push({ name, text: await files.read(`${confDir}/${name}`) });
    } catch {
      // A runtime skips it as well.
    }
  }
  return result;
}
