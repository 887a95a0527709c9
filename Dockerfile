# syntax=docker/dockerfile:1
# session-gateway container image: `docker build -t session-gateway .`
# Three stages: compile TypeScript with the dev dependencies, install the production dependencies on
# their own, then a runtime stage that holds only those and the compiled dist/ and runs as non-root.
# No secret is baked in: GATEWAY_SESSION_SECRET, DATABASE_URL and REDIS_URL come from the runtime
# environment or from mounted files (the *_FILE variables).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
# --ignore-scripts: `prepare` would build before the sources are copied.
RUN npm ci --ignore-scripts
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only. None needs an install script: argon2/bcrypt ship prebuilt binaries.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
# npm, corepack and yarn are not needed to run the gateway: fewer files to ship and to patch.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-v* \
    /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg
ENV NODE_ENV=production
# A container is reached through its published ports: listen on every interface even in the
# embedded demo mode (which binds 127.0.0.1 outside a container).
ENV GATEWAY_HOST=0.0.0.0 GATEWAY_ADMIN_HOST=0.0.0.0
WORKDIR /app
# Owned by root and read-only to the gateway's user: the process cannot rewrite its own code.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The official image's `node` user, by number so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# Proxy port, admin port (/metrics, /healthz, /readyz).
EXPOSE 8000 9180
# Liveness on the admin port; the slim image has no curl, so Node's own fetch does it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.GATEWAY_ADMIN_PORT||9180)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM starts the graceful drain (GATEWAY_SHUTDOWN_DELAY, then GATEWAY_SHUTDOWN_TIMEOUT).
STOPSIGNAL SIGTERM
# The package's `bin` (session-gateway → dist/cli.js); arguments replace `serve`, so
# `docker run -i session-gateway users add alice --password-stdin` runs the CLI.
# --max-semi-space-size=8 bounds V8's young generation at the size stock fastify settles on:
# without it a replica under sustained load drifts to twice that (docs/operations.md, "Memory").
ENTRYPOINT ["node", "--max-semi-space-size=8", "dist/cli.js"]
CMD ["serve"]
