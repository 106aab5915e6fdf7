# The meshlite agent image: the agent (TypeScript run by Node 24's type stripping), its SO_ORIGINAL_DST addon, the
# netfilter tools it drives, and the CNI plugin as a single executable for the installer to copy onto the host.

# Build: production dependencies, the native addon, and the CNI plugin's single executable.
FROM node:24.9.0-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json binding.gyp ./
COPY agent/native agent/native
# The image's own Node is the pinned line: skip the `node` package's download (and drop its shim), then build the addon.
RUN npm ci --ignore-scripts && rm -f node_modules/.bin/node && npm run install
COPY . .
RUN node cni/build-executable.ts --output /src/dist/meshlite-cni && npm prune --omit=dev --ignore-scripts

# Run: the same Node line, iptables (nft and legacy) and ipset, curl for the DaemonSet's probes (they ask the agent's
# unix socket), nothing to compile.
FROM node:24.9.0-bookworm-slim
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
ENTRYPOINT ["node", "agent/main.ts"]
