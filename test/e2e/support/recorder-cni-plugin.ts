// A chained CNI plugin for harness tests: records each invocation, and on ADD passes prevResult on with its mark.

import { appendFileSync, readFileSync } from 'node:fs';

/** One line of the record file. */
export interface RecordedInvocation {
  command: string;
  /** The plugin config's `name` of this plugin instance (recorderName), to tell chained recorders apart. */
  plugin: string;
  env: Record<string, string | undefined>;
  config: { cniVersion?: string; name?: string; prevResult?: { dns?: { search?: string[] }; [key: string]: unknown } };
}

export function readRecord(file: string): RecordedInvocation[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as RecordedInvocation);
}

if (import.meta.main) {
  const config = JSON.parse(readFileSync(0, 'utf8')) as RecordedInvocation['config'] & {
    recordFile: string;
    recorderName: string;
  };
  const command = process.env.CNI_COMMAND ?? '';
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith('CNI_')));
  const entry: RecordedInvocation = { command, plugin: config.recorderName, env, config };
  appendFileSync(config.recordFile, `${JSON.stringify(entry)}\n`);
  if (command === 'VERSION') {
    process.stdout.write(JSON.stringify({ cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0'] }));
  } else if (command === 'ADD') {
    // A chained plugin must output a result; adding a DNS search entry marks what this one passed on.
    const prev = config.prevResult ?? {};
    const search = [...(prev.dns?.search ?? []), config.recorderName];
    process.stdout.write(JSON.stringify({ ...prev, cniVersion: config.cniVersion, dns: { ...prev.dns, search } }));
  }
}
