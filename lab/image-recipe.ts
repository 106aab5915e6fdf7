// What the image's final stage says about how its containers start: ENTRYPOINT, CMD, WORKDIR and ENV, read from the
// repository's Dockerfile, so a container started by the test kubelet runs exactly what the image would run.

import { readFileSync } from 'node:fs';

export interface ImageRecipe {
  entrypoint: string[];
  cmd: string[];
  workdir: string;
  env: Record<string, string>;
}

const DOCKERFILE = new URL('../Dockerfile', import.meta.url);

/** The last stage's instructions (a multi-stage build's image is its last stage); exec-form JSON arrays only. */
export function imageRecipe(dockerfile = readFileSync(DOCKERFILE, 'utf8')): ImageRecipe {
  // Continuation lines joined, comments dropped.
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const lastFrom = lines.findLastIndex((line) => /^FROM\s/i.test(line));
  if (lastFrom < 0) throw new Error('the Dockerfile has no FROM');
  const recipe: ImageRecipe = { entrypoint: [], cmd: [], workdir: '/', env: {} };
  for (const line of lines.slice(lastFrom + 1)) {
    const [, instruction, rest] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    switch (instruction?.toUpperCase()) {
      case 'ENTRYPOINT':
        recipe.entrypoint = execForm(rest, line);
        break;
      case 'CMD':
        recipe.cmd = execForm(rest, line);
        break;
      case 'WORKDIR':
        recipe.workdir = rest.startsWith('/') ? rest : `${recipe.workdir.replace(/\/$/, '')}/${rest}`;
        break;
      case 'ENV':
        for (const match of rest.matchAll(/(\w+)=("[^"]*"|\S+)/g)) recipe.env[match[1]] = match[2].replace(/^"|"$/g, '');
        break;
      default:
        break;
    }
  }
  return recipe;
}

function execForm(text: string, line: string): string[] {
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new Error(`not an exec-form array: ${line}`);
  return value;
}

/**
 * The Node flags the image starts the agent with: what the ENTRYPOINT puts between `node` and `agent/main.ts` (heap
 * sizing). Tests, the demo and the benchmarks start the agent with them too, so that it runs the way a cluster runs it.
 */
export function agentNodeFlags(recipe = imageRecipe()): string[] {
  const entrypoint = recipe.entrypoint;
  const main = entrypoint.indexOf('agent/main.ts');
  if (entrypoint[0] !== 'node' || main < 1) throw new Error(`unexpected ENTRYPOINT ${JSON.stringify(entrypoint)}: want node [flags] agent/main.ts`);
  return entrypoint.slice(1, main);
}
