#!/usr/bin/env bash
# Set-up shared by both quick-start lines on Debian or Ubuntu: the Debian packages, then `npm ci`. Safe to re-run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the project needs. One per line: whatever needs a new tool adds its line here.
APT_PACKAGES=(
  nghttp2-client # h2load: load generator for interop tests and benchmarks
  python3        # node-gyp, which builds the SO_ORIGINAL_DST addon at install
  make           # node-gyp
  g++            # node-gyp (C and C++ compilers)
  iproute2       # `ip netns` for tests that build their own network namespaces
  iptables       # DNAT inside those namespaces, and the agent's interception rules
  ipset          # the agent's sets of opted-in pods and gRPC destinations
  containernetworking-plugins # bridge, host-local, loopback: e2e pods made as a container runtime makes them
  mmdebstrap     # the image test's Debian bases (scripts/image-build.sh): no image registry is reachable in CI
  buildah        # builds the Dockerfile on those bases and runs the image (chroot isolation, no daemon)
  openssl        # the test API server's TLS certificate (agents started from the manifest connect in-cluster)
  curl           # the DaemonSet's exec probes, run by the test kubelet inside the agent's container
  util-linux     # unshare, nsenter, setpriv: the test kubelet's mount namespace, probes and capabilities
  chromium       # the dashboard's browser test (driven by playwright-core, which downloads no browser)
  prometheus     # promtool checks the exposition; a real Prometheus answers every query of the Grafana dashboard
  golang-go      # builds the grpc-go test peers (lab/grpc-go/) offline, in GOPATH mode
  golang-google-grpc-dev # grpc-go's sources for those peers: a gRPC implementation nobody here wrote
)
# npm runs `npm ci`, which fetches the pinned Node (package.json), so any Node that runs npm will do. Debian's npm
# also brings the Node headers node-gyp needs (npm → node-gyp → libnode-dev). An npm already installed is kept.
if ! command -v npm >/dev/null 2>&1; then
  APT_PACKAGES+=(nodejs npm)
fi

step() { printf '\n==> %s\n' "$*"; }
fail() {
  printf 'setup: %s\n' "$*" >&2
  exit 1
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  command -v apt-get >/dev/null 2>&1 ||
    fail "apt-get not found: this script is for Debian or Ubuntu. Install ${missing[*]} (or their equivalents), then run npm ci."
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || fail "run as root, or install sudo: apt-get must install ${missing[*]}"
    sudo=(sudo)
  fi
  step "apt-get update"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  step "apt-get install ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  step "Debian packages already installed: ${APT_PACKAGES[*]}"
fi

# node-gyp downloads the Node headers from nodejs.org unless told where they are; CI reaches only the npm
# registry and Debian, so point it at the headers of the system Node when nobody configured a nodedir. The addon
# uses N-API only, whose ABI does not depend on the Node version the headers come from.
system_node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node || echo /usr/bin/node)")")")
if [[ -z ${npm_config_nodedir:-} ]] && ! npm config get nodedir 2>/dev/null | grep -q '^/' &&
  [[ -f $system_node_prefix/include/node/node_api.h ]]; then
  step "using the system Node headers for node-gyp: npm_config_nodedir=$system_node_prefix"
  export npm_config_nodedir=$system_node_prefix
fi

step "npm ci (system node $(node --version 2>/dev/null || echo none), npm $(npm --version))"
npm ci
step "ready: the project runs on its pinned Node $(node_modules/.bin/node --version)"
