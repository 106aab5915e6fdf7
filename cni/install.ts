// The installer: puts the plugin executable in the host's CNI bin directory and meshlite last in the primary network, keeps them there, and takes them out.

import { type FSWatcher, watch as watchDirectory } from 'node:fs';
import { chmod, copyFile, open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { type ConfigFile, isConfigFileName, parseNetworkConfig, primaryConfig } from './conf-files.ts';
import { addMeshlite, type ConfigEdit, removeMeshlite } from './conflist-edit.ts';

export interface InstallerOptions {
  /** The plugin executable to install (built by build-executable.ts). */
  pluginSource: string;
  /** The host's CNI bin directory as mounted here, e.g. /host/opt/cni/bin. */
  binDir: string;
  /** The host's CNI configuration directory as mounted here, e.g. /host/etc/cni/net.d. */
  confDir: string;
  /** The executable's name in binDir and the entry's `type`. */
  pluginName?: string;
  /** meshlite's keys in its entry (agentSocket, failPolicy, timeoutMs, logFile); `type` is set from pluginName. */
  settings?: Record<string, unknown>;
  log?: (line: string) => void;
}

export type BinaryOutcome = 'copied' | 'unchanged';

export type ConfigOutcome =
  | { kind: 'no-config'; reason: string }
  | { kind: 'unchanged'; file: string }
  | { kind: 'changed'; summary: string }
  | { kind: 'refused'; file: string; reason: string };

export interface ReconcileResult {
  binary: BinaryOutcome;
  config: ConfigOutcome;
}

export interface UninstallResult {
  changes: string[];
  refusals: string[];
  binaryRemoved: boolean;
}

export interface WatchOptions {
  signal: AbortSignal;
  /** Changes in the directory come in bursts (a temp file, a rename); one pass after the burst is enough. */
  debounceMs?: number;
  /** A pass also runs this often, for changes a watch can miss (a directory replaced, an overlay mount). */
  resyncMs?: number;
}

export interface Installer {
  installBinary(): Promise<BinaryOutcome>;
  /** One pass: the binary in place, meshlite last in the primary network. Idempotent: a second pass changes nothing. */
  reconcileOnce(): Promise<ReconcileResult>;
  /** reconcileOnce, then again whenever the configuration directory changes, until the signal aborts. */
  watch(options: WatchOptions): Promise<void>;
  /** meshlite out of every configuration file (converted files restored), then the executable deleted. */
  uninstall(): Promise<UninstallResult>;
}

/** Writes beside the target and renames over it, so that a runtime never reads half a file; the name is not one it loads. */
async function writeAtomically(path: string, directory: string, name: string, text: string, mode: number): Promise<void> {
  const temporary = join(directory, `.${name}.meshlite-${process.pid}.tmp`);
  const handle = await open(temporary, 'w', mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await chmod(temporary, mode);
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

async function readDirectory(confDir: string): Promise<ConfigFile[]> {
  let names: string[];
  try {
    names = await readdir(confDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const files: ConfigFile[] = [];
  for (const name of names.filter(isConfigFileName)) {
    try {
      files.push({ name, text: await readFile(join(confDir, name), 'utf8') });
    } catch {
      // Gone between readdir and read, or a directory with a config-like name: a runtime skips it as well.
    }
  }
  return files;
}

export function createInstaller(options: InstallerOptions): Installer {
  const { pluginSource, binDir, confDir, pluginName = 'meshlite', settings = {}, log = () => {} } = options;
  const target = join(binDir, pluginName);
  const entry = { ...settings, type: pluginName };

  /** Carries an edit out: the new file first, then the old one away, so that there is always a network to load. */
  async function apply(edit: Extract<ConfigEdit, { kind: 'change' }>, modeFrom: string): Promise<void> {
    const mode = await stat(join(confDir, modeFrom)).then((s) => s.mode & 0o777, () => 0o644);
    if (edit.write !== null) await writeAtomically(join(confDir, edit.write.name), confDir, edit.write.name, edit.write.text, mode);
    if (edit.remove !== null) await rm(join(confDir, edit.remove), { force: true });
    log(edit.summary);
  }

  async function installBinary(): Promise<BinaryOutcome> {
    const source = await stat(pluginSource);
    const current = await stat(target).catch(() => null);
    // Size and modification time (copied along) tell a changed executable without hashing 100 MB on every pass;
    // setting a time goes through a double of seconds, so the copy's may differ from the source's below a millisecond.
    const same = current !== null && current.size === source.size && Math.abs(current.mtimeMs - source.mtimeMs) < 1;
    if (same && (current.mode & 0o111) !== 0) return 'unchanged';
    const temporary = join(binDir, `.${pluginName}.meshlite-${process.pid}.tmp`);
    try {
      await copyFile(pluginSource, temporary);
      await chmod(temporary, 0o755);
      await utimes(temporary, source.atime, source.mtime);
      // rename replaces the file while runtimes may be executing the old one: they keep their inode.
      await rename(temporary, target);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
    log(`installed ${target}`);
    return 'copied';
  }

  async function reconcileConfig(): Promise<ConfigOutcome> {
    const directory = await readDirectory(confDir);
    const primary = primaryConfig(directory);
    if (primary === null) return { kind: 'no-config', reason: `no loadable CNI network configuration in ${confDir} yet` };
    const edit = addMeshlite(primary.file, primary.config, entry, directory);
    if (edit.kind === 'unchanged') return { kind: 'unchanged', file: edit.file };
    if (edit.kind === 'refuse') return { kind: 'refused', file: edit.file, reason: edit.reason };
    await apply(edit, primary.file.name);
    return { kind: 'changed', summary: edit.summary };
  }

  async function reconcileOnce(): Promise<ReconcileResult> {
    // The executable first: a configuration naming meshlite before it exists would fail every pod's ADD.
    const binary = await installBinary();
    return { binary, config: await reconcileConfig() };
  }

  async function uninstall(): Promise<UninstallResult> {
    const changes: string[] = [];
    const refusals: string[] = [];
    // Every file, not only the primary one: the primary network may have changed since meshlite was added.
    for (const file of await readDirectory(confDir)) {
      const config = parseNetworkConfig(file);
      if (config === null) continue;
      const edit = removeMeshlite(file, config, pluginName, await readDirectory(confDir));
      if (edit.kind === 'refuse') refusals.push(`${edit.file}: ${edit.reason}`);
      if (edit.kind !== 'change') continue;
      await apply(edit, file.name);
      changes.push(edit.summary);
    }
    // The executable last: a configuration that still named meshlite would otherwise fail every pod's DEL.
    const existed = await stat(target).then(() => true, () => false);
    await rm(target, { force: true });
    if (existed) log(`removed ${target}`);
    return { changes, refusals, binaryRemoved: existed };
  }

  async function watch({ signal, debounceMs = 200, resyncMs = 30_000 }: WatchOptions): Promise<void> {
    let running: Promise<void> | null = null;
    let again = false;
    let lastReport = '';
    let debounce: NodeJS.Timeout | undefined;
    const pass = (): Promise<void> => {
      if (running !== null) {
        again = true;
        return running;
      }
      running = passes().finally(() => {
        running = null;
      });
      return running;
    };
    const passes = async (): Promise<void> => {
      do {
        again = false;
        let report: string;
        try {
          const { config } = await reconcileOnce();
          report = config.kind === 'refused' ? `not added to ${config.file}: ${config.reason}` : config.kind === 'no-config' ? config.reason : '';
        } catch (err) {
          report = `reconcile failed: ${(err as Error).message}`;
        }
        // The same trouble on every resync is one line, not one per pass.
        if (report !== lastReport && report !== '') log(report);
        lastReport = report;
      } while (again && !signal.aborted);
    };
    const schedule = (): void => {
      clearTimeout(debounce);
      debounce = setTimeout(() => void pass(), debounceMs);
    };
    await pass();
    if (signal.aborted) return;
    let watcher: FSWatcher | null = null;
    try {
      watcher = watchDirectory(confDir, { signal }, (_event, name) => {
        // Our own temporary files come and go on every write; the rename that follows is the event that matters.
        if (name === null || isConfigFileName(name)) schedule();
      });
      watcher.on('error', (err) => log(`watching ${confDir} failed: ${err.message}; resyncing every ${resyncMs} ms only`));
    } catch (err) {
      log(`cannot watch ${confDir}: ${(err as Error).message}; resyncing every ${resyncMs} ms only`);
    }
    const resync = setInterval(() => void pass(), resyncMs);
    if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    clearInterval(resync);
    clearTimeout(debounce);
    watcher?.close();
    await running;
  }

  return { installBinary, reconcileOnce, watch, uninstall };
}
