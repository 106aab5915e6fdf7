// A started process's arguments as a result file records them: the same on any machine and any run. Paths in the
// repository are relative to it, the run's temporary directory is `<run dir>`, and the loopback ports the kernel
// handed out (bound to 0) are `<free port>`.

import { relative, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..');

export function portableArgs(args: readonly string[], runDir: string): string[] {
  return args.map((arg) =>
    arg
      .split(runDir)
      .join('<run dir>')
      .replace(/^\/\S+$/, (path) => (path.startsWith(`${REPO}/`) ? relative(REPO, path) : path))
      .replace(/\b127\.0\.0\.1:\d+\b/g, '127.0.0.1:<free port>'),
  );
}
