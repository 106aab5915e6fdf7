// What this agent is: its version (package.json, which the image carries beside the code) and the Node.js running it.

import { readFileSync } from 'node:fs';

export interface BuildInfo {
  version: string;
  nodejs: string;
}

const PACKAGE_JSON = new URL('../../package.json', import.meta.url);

/** Read once at start; "unknown" if package.json is missing or has no version (a copy of the code without it). */
export function readBuildInfo(packageJson: URL = PACKAGE_JSON): BuildInfo {
  let version = 'unknown';
  try {
    const parsed = JSON.parse(readFileSync(packageJson, 'utf8')) as { version?: unknown };
    if (typeof parsed.version === 'string' && parsed.version !== '') version = parsed.version;
  } catch {
    // Keep "unknown": the version is for people and dashboards, never a reason not to start.
  }
  return { version, nodejs: process.version };
}
