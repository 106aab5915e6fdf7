// The image's recipe: what the Dockerfile copies exists in the repository and is not ignored, what must never reach
// a layer is ignored, the labels say what the image is, in step with package.json, and the bases are build
// arguments pinned by digest by default. (test/image/image-run.test.ts builds and runs it.)

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const ROOT = new URL('../../', import.meta.url);
const DOCKERFILE = readFileSync(new URL('Dockerfile', ROOT), 'utf8');
const IGNORED = readFileSync(new URL('.dockerignore', ROOT), 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));
const PKG = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as {
  version: string;
  description: string;
  license: string;
  devDependencies: Record<string, string>;
};

/** The sources of every COPY from the build context (not `--from=` another stage). */
function contextCopies(): string[] {
  return [...DOCKERFILE.matchAll(/^COPY (?!--from=)(.+)$/gm)].flatMap((match) => match[1].trim().split(/\s+/).slice(0, -1));
}

describe('Dockerfile and .dockerignore', () => {
  it('copies from the context only what exists and is not ignored', () => {
    const copies = contextCopies();
    assert.ok(copies.includes('package.json') && copies.includes('agent/native'), `copies: ${copies.join(' ')}`);
    for (const source of copies.filter((c) => c !== '.')) {
      assert.ok(existsSync(new URL(source, ROOT)), `${source} exists`);
      assert.ok(!IGNORED.includes(source), `${source} is not ignored`);
    }
  });

  it('keeps dependencies, builds, results, VCS state and secrets out of the context', () => {
    for (const entry of ['.git', 'node_modules', 'build', 'dist', 'reports', '.stryker-tmp', '.env', '*.key', 'kubeconfig*']) {
      assert.ok(IGNORED.includes(entry), `.dockerignore has ${entry}`);
    }
  });

  it('labels the image with its title, description, version and licence, as package.json says', () => {
    assert.match(DOCKERFILE, new RegExp(`^ARG VERSION=${PKG.version.replaceAll('.', '\\.')}$`, 'm'));
    assert.ok(DOCKERFILE.includes('org.opencontainers.image.title="meshlite"'));
    assert.ok(DOCKERFILE.includes(`org.opencontainers.image.description="${PKG.description}"`));
    // The Dockerfile's own variable, as the Dockerfile writes it.
    assert.ok(DOCKERFILE.includes(['org.opencontainers.image.version="$', '{VERSION}"'].join('')));
    assert.ok(DOCKERFILE.includes(`org.opencontainers.image.licenses="${PKG.license}"`));
  });

  it('takes its two bases as build arguments, by default the official images of the pinned Node, named in full and pinned by digest', () => {
    const node = PKG.devDependencies.node;
    const firstFrom = DOCKERFILE.search(/^FROM /m);
    const defaults = Object.fromEntries([...DOCKERFILE.slice(0, firstFrom).matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
    assert.deepEqual(Object.keys(defaults).sort(), ['BUILD_BASE', 'RUN_BASE']);
    const pinned = (tag: string) => new RegExp(`^docker\\.io/library/node:${tag.replaceAll('.', '\\.')}@sha256:[0-9a-f]{64}$`);
    assert.match(defaults.BUILD_BASE, pinned(`${node}-bookworm`));
    assert.match(defaults.RUN_BASE, pinned(`${node}-bookworm-slim`));
    const froms = [...DOCKERFILE.matchAll(/^FROM (.+)$/gm)].map((m) => m[1]);
    assert.equal(froms.length, 2, froms.join(' | '));
    assert.match(froms[0], /^\$\{BUILD_BASE\} AS build$/);
    assert.match(froms[1], /^\$\{RUN_BASE\}$/);
  });

  it('builds the addon against the headers of the Node in the base, and lets only the build stage trust an extra CA', () => {
    const [build, final] = DOCKERFILE.split(/^FROM \$\{RUN_BASE\}$/m);
    assert.match(build, /^ENV npm_config_nodedir=\/usr\/local$/m);
    // No default: unset unless a build passes it; an ARG of the build stage reaches no layer of the image.
    assert.match(build, /^ARG NODE_EXTRA_CA_CERTS$/m);
    assert.doesNotMatch(final, /NODE_EXTRA_CA_CERTS|npm_config_nodedir/);
  });

  it('is built by CI: setup.sh installs buildah and mmdebstrap, and the build script passes both bases', () => {
    const setup = readFileSync(new URL('scripts/setup.sh', ROOT), 'utf8');
    const packages = /^APT_PACKAGES=\(\n([\s\S]*?)^\)/m.exec(setup)?.[1].split('\n').map((line) => line.trim().split(/\s+/)[0]) ?? [];
    assert.ok(packages.includes('buildah') && packages.includes('mmdebstrap'), `APT_PACKAGES: ${packages.join(' ')}`);
    const script = readFileSync(new URL('scripts/image-build.sh', ROOT), 'utf8');
    for (const arg of ['BUILD_BASE', 'RUN_BASE', 'VERSION']) assert.match(script, new RegExp(`--build-arg "${arg}=\\$`));
  });
});
