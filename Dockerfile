# longhaul's container image. Build: docker build -t longhaul:0.1.0 .
# Node comes from the same version as the `node` dependency in package.json (test/dockerfile.test.ts
# checks that the two agree), on Debian slim; the tag is pinned to that exact release.

# 1. Production dependencies only. --ignore-scripts: the `node` package's install script would
#    download a second Node binary; the image already has this exact version.
FROM node:24.11.1-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# 2. The runtime: the sources (run by Node's type stripping, nothing to compile) and those
#    dependencies, owned by root and run as the image's unprivileged `node` user, by number
#    (1000) so that Kubernetes' runAsNonRoot can verify it.
FROM node:24.11.1-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
# 3. Node's compile cache, primed at build time, as the user that runs the gateway (the cache's
#    directory is named after the UID): every start then takes the type-stripped source from it,
#    and the TypeScript stripper (about 15 MiB, for the process's whole life) is never loaded. A
#    read-only root filesystem (Kubernetes readOnlyRootFilesystem) still reads it. Primed: what
#    serve loads (with the entry point's V8 flag), what the config loader process loads (it runs
#    without it), the embedded demo's upstream and a worker pool's modules (loaded only with workers > 1).
ENV NODE_COMPILE_CACHE=/app/.node-compile-cache
RUN mkdir .node-compile-cache && chown 1000:1000 .node-compile-cache
USER 1000:1000
RUN node --max-semi-space-size=8 src/cli.ts serve --print-config > /dev/null \
 && node src/cli.ts check --demo > /dev/null && node src/config/loader-child.ts \
 && node --max-semi-space-size=8 --input-type=module \
      -e "for (const m of ['demo/upstream', 'lifecycle/primary', 'lifecycle/worker']) await import('./src/' + m + '.ts')"
# The gateway and admin ports of the default config and the embedded demo.
EXPOSE 8080 9901
# No HEALTHCHECK: the admin address is the config's to choose, and Kubernetes probes /readyz and
# /healthz itself (see `longhaul render kubernetes`).
HEALTHCHECK NONE
# Exec form: node is PID 1 and gets SIGTERM itself (a shell form would wrap it in /bin/sh, which
# does not forward it), so a rollout drains in-flight requests instead of killing them.
# --max-semi-space-size: the young generation V8 may grow to (MiB), as bin/longhaul sets it (README,
# "The young generation").
ENTRYPOINT ["node", "--max-semi-space-size=8", "src/cli.ts", "serve"]
