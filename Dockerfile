# The sshca server image: `sshca-server` in production mode, settings from
# SSHCA_* variables (docs/deploy.md). Three stages, so that neither the
# compilers nor the devDependencies reach the image that runs:
#   prod-deps  `npm ci --omit=dev` with python3/make/g++ to compile better-sqlite3
#   build      `npm ci` and `npm run build` (tsc, esbuild) -> dist/
#   runtime    the base image + prod-deps' node_modules + build's dist/, as uid 1000
#
# test/infra/container-image.test.ts runs the prod-deps and runtime steps of
# this file as written (Docker does not run on the project's machines), starts
# the server as ENTRYPOINT does and runs the HEALTHCHECK command against it.
#
# Base image: pinned by tag. Pin it by digest too where you build
# (`node:20-bookworm-slim@sha256:<digest>`, from `docker buildx imagetools
# inspect node:20-bookworm-slim`): a tag moves with every rebuild, a digest
# names exactly one image. This repository carries no digest because its
# machines reach no container registry, so none could be looked up or checked.

FROM node:20-bookworm-slim AS prod-deps
WORKDIR /app
# better-sqlite3 is a native module: compiled here, from the source the
# lockfile pins, against the headers that ship with this Node (/usr/local),
# rather than downloading a prebuilt binary or the headers at build time.
ENV npm_config_build_from_source=true \
    npm_config_nodedir=/usr/local
# Versions are not pinned: the Debian release is (bookworm, through the tag),
# and its security updates replace exact versions.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts: no install script runs but the one named after it (the
# same allowlist as package.json's allowScripts, which this image's npm 10
# does not read), and not the root `prepare` (a build that needs devDependencies).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# esbuild's install script checks its platform binary; nothing else runs.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild esbuild
COPY tsconfig.json tsconfig.build.json ./
COPY protocol ./protocol
COPY server ./server
COPY client ./client
COPY ca-setup ./ca-setup
COPY scripts ./scripts
COPY bench ./bench
RUN npm run build

# Amazon RDS's CA bundle, so SSHCA_STORE can say sslmode=verify-full to
# Aurora (its certificates chain to RDS's own CAs, which no system store
# has). Fetched over HTTPS from AWS at build time; pin it where you build with
# ADD --checksum=sha256:<digest> (the machines that wrote this file reach no
# AWS host to take the digest from). GovCloud and China have bundles of their own.
FROM node:20-bookworm-slim AS rds-ca
ADD https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /rds/global-bundle.pem

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    SSHCA_HOST=0.0.0.0 \
    SSHCA_PORT=8080
WORKDIR /app
# Owned by root and not writable by the server's user: the code cannot be
# changed by the process that runs it. The audit store is PostgreSQL
# (SSHCA_STORE) or a SQLite file on a volume writable by uid 1000 (SSHCA_AUDIT_DB).
COPY package.json package-lock.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
# Only what sshca-server and sshca-setup load: no demo, bench or client bundle.
COPY --from=build /app/dist/protocol ./dist/protocol
COPY --from=build /app/dist/server ./dist/server
COPY --from=build /app/dist/client ./dist/client
COPY --from=build /app/dist/ca-setup ./dist/ca-setup
# ADD from a URL writes mode 0600 as root: the server (uid 1000) must be able to read it.
COPY --from=rds-ca --chmod=0644 /rds/global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
# The base image's `node` user, by number so that orchestrators can tell it is not root.
USER 1000:1000
EXPOSE 8080
# Node itself (a slim image has no curl): /healthz on the port the server listens on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SSHCA_PORT || 8080) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
# Production mode: no --dev; arguments given to `docker run` are added (e.g. --help).
ENTRYPOINT ["node", "dist/server/bin/sshca-server.js"]
