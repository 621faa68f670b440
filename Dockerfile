# syntax=docker/dockerfile:1
# The sidecar's image. The build context is the file tree that `npm run image:tree` assembles
# (build/image-tree: the pinned Node binary, the built sidecar, its production node_modules, the built
# dashboard), not the
# repository — the tree is what apps/sidecar-e2e/src/image.spec.ts starts and checks in CI:
#
#   npm ci && npm run image:tree
#   docker build -f Dockerfile -t training-callbacks-sidecar:0.1.0 build/image-tree
#
# Pin the two base images by digest in your registry (tags here; no registry is reachable where this
# file is tested). Both are Debian 12 (glibc, libstdc++), which the Node binary and the SQLite addon need.

# Stage 1: the tree on a plain Debian, run once, so a broken tree (wrong architecture, a missing
# library, a module that does not load) fails the build instead of the first pod.
FROM debian:12-slim AS check
COPY usr/local/bin/node /usr/local/bin/node
COPY app /app
RUN ["/usr/local/bin/node", "/app/node_modules/@training-callbacks/sidecar/dist/bundle/main.js", "--help"]
RUN ["/usr/local/bin/node", "-e", "new (require('/app/node_modules/better-sqlite3'))(':memory:').close()"]
RUN ["/usr/local/bin/node", "-e", "require('fs').accessSync('/app/node_modules/@training-callbacks/dashboard/dist/index.html')"]

# Stage 2: distroless (no shell, no package manager), non-root. Nothing in /app is written at run
# time, so the pod can run with readOnlyRootFilesystem: the database and artifacts live in /data.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=check /usr/local/bin/node /usr/local/bin/node
COPY --from=check /app /app
ENV NODE_ENV=production \
    TRAINING_CALLBACKS_DB=/data/training-callbacks.sqlite
WORKDIR /data
VOLUME ["/data"]
USER 65532:65532
# 50051 gRPC (loopback by default: the trainer is in the same pod), 50052 HTTP (/livez /readyz /metrics,
# the dashboard at / and its Connect API).
EXPOSE 50051 50052
ENTRYPOINT ["/usr/local/bin/node", "--max-semi-space-size=4", "--single-threaded-gc", "/app/node_modules/@training-callbacks/sidecar/dist/bundle/main.js"]
