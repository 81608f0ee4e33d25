# fulcrum as a container image: small, non-root, two stages.
#
#   docker build -t fulcrum .
#   docker run --rm -p 80:80 -p 443:443 --sysctl net.ipv4.ip_unprivileged_port_start=0 \
#     -v $PWD/fulcrum.conf:/etc/fulcrum/fulcrum.conf:ro fulcrum
#
# deploy/compose.yml runs it in front of the seed's backends.

# ---- build: compile the TypeScript, then keep only the runtime dependencies
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (tsc) runs below, once the sources are here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --no-audit --no-fund \
 && mkdir -p /state/acme

# ---- runtime: Node.js and nothing else (no shell, no package manager), as uid 65532
FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /opt/fulcrum
ENV NODE_ENV=production
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY bin ./bin
COPY docs/admin-openapi.yaml ./docs/admin-openapi.yaml
# ACME accounts and certificates (a volume in deploy/compose.yml), writable by the non-root user.
# The configuration is mounted at /etc/fulcrum/fulcrum.conf.
COPY --from=build --chown=65532:65532 /state /var/lib/fulcrum
USER nonroot
EXPOSE 80 443 9090
STOPSIGNAL SIGTERM
# The image's entrypoint is node; the flag keeps V8's young generation small (see bin/fulcrum.js).
CMD ["--max-semi-space-size=4", "--min-semi-space-size=4", "bin/fulcrum.js", "start", "--config", "/etc/fulcrum/fulcrum.conf"]
