// Puts a TypeScript CNI plugin on a CNI_PATH: an executable named after the plugin's `type` that runs it with this Node.

import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const quote = (text: string): string => `'${text.replaceAll("'", "'\\''")}'`;

/**
 * Writes `<dir>/<type>`, a two-line shell wrapper that execs `node <script>`. A runtime finds a plugin by `type` in
 * CNI_PATH and runs it without arguments, with the CNI_* environment and the config on stdin: the wrapper passes
 * all of that on. Node is this process's (Node 24), never whichever `node` is first on the PATH.
 */
export function writePluginWrapper(dir: string, type: string, script: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(type)) throw new Error(`CNI plugin type "${type}" is not a plain file name`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, type);
  writeFileSync(file, `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(script)} "$@"\n`);
  chmodSync(file, 0o755);
  return file;
}
