# The meshlite agent image: the agent (TypeScript run by Node 24's type stripping), its SO_ORIGINAL_DST addon, the
# netfilter tools it drives, and the CNI plugin as a single executable for the installer to copy onto the host.

# The two bases, as build arguments: by default the official Node images of the pinned line, named in full (no
# short-name lookup can pick another registry) and pinned by digest (a rebuilt tag cannot change what is built).
# Any base works that has Debian 12's apt and dpkg and Node at /usr/local/bin/node with its headers in
# /usr/local/include/node; the build base also needs npm and python3, make and g++ for node-gyp. CI, which reaches
# no image registry, builds on bases it makes from Debian's packages (scripts/image-build.sh).
ARG BUILD_BASE=docker.io/library/node:24.9.0-bookworm@sha256:4e87fa2c1aa4a31edfa4092cc50428e86bf129e5bb528e2b3bbc8661e2038339
ARG RUN_BASE=docker.io/library/node:24.9.0-bookworm-slim@sha256:3e69116c924bfcba6c6979aff60d966c37aef56d488ce091c69d442ebec9f103

# Build: production dependencies, the native addon, and the CNI plugin's single executable.
FROM ${BUILD_BASE} AS build
WORKDIR /src
COPY package.json package-lock.json binding.gyp ./
COPY agent/native agent/native
# The image's own Node is the pinned line: skip the `node` package's download (and drop its shim), then build the
# addon against the headers that Node ships beside itself, so the build fetches nothing from nodejs.org.
ENV npm_config_nodedir=/usr/local
# Unset by default. A build behind a TLS-inspecting proxy passes the path of that proxy's CA, mounted for the build
# (scripts/image-build.sh does, when its host trusts one); an ARG of this stage, it reaches no layer of the image.
ARG NODE_EXTRA_CA_CERTS
RUN npm ci --ignore-scripts && rm -f node_modules/.bin/node && npm run install
COPY . .
RUN node cni/build-executable.ts --output /src/dist/meshlite-cni && npm prune --omit=dev --ignore-scripts

# Run: the same Node line, iptables (nft and legacy) and ipset, curl for the DaemonSet's probes (they ask the agent's
# unix socket), nothing to compile.
FROM ${RUN_BASE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="meshlite" \
      org.opencontainers.image.description="Per-node Kubernetes agent that balances every gRPC request, not every connection." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update && apt-get install -y --no-install-recommends iptables ipset curl && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/meshlite
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/build/Release/original_dst.node build/Release/original_dst.node
COPY --from=build /src/agent agent
COPY --from=build /src/cni cni
COPY --from=build /src/dist/meshlite-cni dist/meshlite-cni
# V8 grows its young generation to 64 MiB a half-space under bursts (10k connections opening, say) and keeps it:
# 128 MiB of RSS that holds garbage. 16 MiB halves keep it at 32 MiB (docs/architecture.md, request path, item 5).
# One V8 helper thread instead of four: an idle agent is 7-10 MiB smaller (119-123 → 111-113 MiB with Kubernetes
# discovery), and at 12k requests/s neither its CPU per request nor its p99 moved beyond the runs' noise
# (docs/performance.md, Memory). Tests, the demo and the benchmarks start the agent with these same flags
# (lab/image-recipe.ts, agentNodeFlags).
ENTRYPOINT ["node", "--max-semi-space-size=16", "--v8-pool-size=1", "agent/main.ts"]
