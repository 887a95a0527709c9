/**
 * Disposable Redis and PostgreSQL servers for integration tests.
 *
 * Each call starts private server processes on free 127.0.0.1 ports with their
 * own temp dirs, so tap's parallel test files never share state and never touch
 * the machine's system services on 6379/5432.
 *
 * Alternatively point the tests at existing servers:
 * - TEST_REDIS_URL: used as is. A distinct DB number would not isolate pub/sub
 *   (channels are server-wide), so tests must use unique key prefixes and
 *   channel names instead. stop()/start() throw: we cannot cause an outage.
 * - TEST_DATABASE_URL: a fresh database `sgw_test_<random>` is created in that
 *   server and dropped again when the process is about to exit.
 *
 * If neither the env var nor the server binaries exist we throw one clear line
 * rather than skip: a silently skipped integration test is a passing lie.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, readdirSync, rmSync } from 'node:fs';
import { chown, mkdtemp, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';

export interface RedisService {
  url: string;
  port: number;
  /** True when TEST_REDIS_URL points at a server we do not control. */
  readonly external: boolean;
  stop(): Promise<void>;
  /** Restart after stop(): same port, same dir (for outage tests). */
  start(): Promise<void>;
}

export interface PostgresService {
  url: string;
  /** True when TEST_DATABASE_URL points at a server we do not control. */
  readonly external: boolean;
  stop(): Promise<void>;
  /** Restart after stop(): same port, same data dir. */
  start(): Promise<void>;
}

const execFileAsync = promisify(execFile);
const READY_TIMEOUT_MS = 10_000;
/** Ports can be grabbed by a parallel test file between probe and bind; retry with a new one. */
const PORT_ATTEMPTS = 3;

// ---------------------------------------------------------------------------
// Last-resort cleanup: server processes must not outlive the test process.
// ---------------------------------------------------------------------------

const exitCleanups = new Set<() => void>();
let exitHooksInstalled = false;

/**
 * Register a synchronous cleanup for process exit; teardown normally does the real work first.
 * Returns a function that unregisters it (once teardown has cleaned up properly).
 */
export function onProcessExit(fn: () => void): () => void {
  installExitHooks();
  exitCleanups.add(fn);
  return () => exitCleanups.delete(fn);
}

function runExitCleanups(): void {
  for (const fn of exitCleanups) {
    try {
      fn();
    } catch {
      // Best effort: the process is going away and must not hang or throw here.
    }
  }
  exitCleanups.clear();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', runExitCleanups);
  // A fatal signal (tap sends SIGALRM or SIGTERM on timeout) skips 'exit' handlers, so
  // clean up here as well, then re-raise so the process still dies by that
  // signal and tap's own signal handling still runs.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGALRM'] as const) {
    process.once(sig, () => {
      runExitCleanups();
      process.kill(process.pid, sig);
    });
  }
}

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

/** Ask the OS for a free port: bind to port 0, read it back, release it. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('test setup: could not get a free port'))));
    });
  });
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Look for `name` on PATH, then in `extraDirs` (sbin is often not on PATH for non-root users). */
export function findExecutable(name: string, extraDirs: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...extraDirs];
  return dirs.map((dir) => join(dir, name)).find(isExecutable);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Last lines of a server log, so a failed start explains itself. */
export async function logTail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

/**
 * Runs one command on a fresh connection that never retries: for readiness probes and for
 * asking a server we are starting or stopping. Any failure is reported as null.
 */
export async function askRedisOnce(target: string | { port: number }, command: string, ...args: string[]): Promise<unknown> {
  const options = { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null };
  const client = typeof target === 'string' ? new Redis(target, options) : new Redis({ host: '127.0.0.1', port: target.port, ...options });
  client.on('error', () => {}); // reported through the return value instead
  try {
    await client.connect();
    return await client.call(command, ...args);
  } catch {
    return null;
  } finally {
    client.disconnect();
  }
}

/** One PING over a fresh connection; any failure just means "not ready yet". */
async function pingRedis(url: string): Promise<boolean> {
  return (await askRedisOnce(url, 'PING')) === 'PONG';
}

function externalRedis(url: string): RedisService {
  const refuse = async (): Promise<void> => {
    throw new Error('cannot stop an external Redis (TEST_REDIS_URL is set); outage tests need a local redis-server');
  };
  return { url, port: Number(new URL(url).port || 6379), external: true, stop: refuse, start: refuse };
}

function isAlive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Resolves when the child has exited (or never started), so stop() can wait for it. */
function exitOf(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (!isAlive(child)) return resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
}

/** A redis-server child on a fixed port/dir that can be stopped and started again. */
class LocalRedis implements RedisService {
  readonly external = false;
  readonly url: string;
  private child: ChildProcess | undefined;

  constructor(
    private readonly bin: string,
    private readonly dir: string,
    readonly port: number,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  get logFile(): string {
    return join(this.dir, 'redis.log');
  }

  async start(): Promise<void> {
    if (this.child && isAlive(this.child)) return;
    // No persistence: tests want an empty server, and outages should lose data like a real crash would.
    const args = ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(this.port)];
    args.push('--dir', this.dir, '--logfile', this.logFile, '--daemonize', 'no');
    this.child = spawn(this.bin, args, { stdio: 'ignore' });
    await this.waitReady(this.child);
    // A forgotten stop() must not keep the test process alive; the exit hook kills it instead.
    this.child.unref();
  }

  /** Poll PING until it answers; fail fast if the process died (e.g. port taken). */
  private async waitReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (!isAlive(child)) break;
      if (await pingRedis(this.url)) return;
      await sleep(100);
    }
    const why = isAlive(child) ? `no PONG within ${READY_TIMEOUT_MS} ms` : 'process exited';
    await this.stop();
    throw new Error(`test setup: redis-server on port ${this.port} did not start (${why}):\n${await logTail(this.logFile)}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !isAlive(child)) return;
    const exited = exitOf(child);
    child.ref(); // keep the event loop alive until the exit is observed
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  /** Synchronous variant for the exit hook: no time left for a graceful shutdown. */
  killNow(): void {
    if (this.child && isAlive(this.child)) this.child.kill('SIGKILL');
  }
}

export async function startRedis(): Promise<RedisService> {
  const externalUrl = process.env.TEST_REDIS_URL;
  if (externalUrl) return externalRedis(externalUrl);

  const bin = findExecutable('redis-server', ['/usr/bin', '/usr/sbin']);
  if (!bin) {
    throw new Error('test setup: redis-server not found on PATH and TEST_REDIS_URL not set (install Debian package redis-server)');
  }
  const dir = await mkdtemp(join(tmpdir(), 'sgw-redis-'));
  for (let attempt = 1; ; attempt++) {
    const redis = new LocalRedis(bin, dir, await freePort());
    try {
      await redis.start();
    } catch (err) {
      if (attempt < PORT_ATTEMPTS) continue;
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    onProcessExit(() => {
      redis.killNow();
      rmSync(dir, { recursive: true, force: true });
    });
    return redis;
  }
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

/** Run one statement on a short-lived connection (admin work on an external server). */
async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * Drop the throwaway database once the process goes idle. Not in teardown:
 * tests may still hold pooled connections then, and FORCE would kill them.
 */
function dropOnExit(baseUrl: string, name: string): void {
  process.once('beforeExit', () => {
    adminQuery(baseUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((err: unknown) => {
      console.warn(`test cleanup: could not drop database ${name}: ${String(err)}`);
    });
  });
}

async function externalPostgres(baseUrl: string): Promise<PostgresService> {
  // Only [a-z0-9_], so it is safe to splice into SQL without quoting.
  const name = `sgw_test_${randomBytes(6).toString('hex')}`;
  try {
    await adminQuery(baseUrl, `CREATE DATABASE ${name}`);
  } catch (err) {
    throw new Error(`test setup: cannot create a test database via TEST_DATABASE_URL: ${String(err)}`);
  }
  dropOnExit(baseUrl, name);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  const refuse = async (): Promise<void> => {
    throw new Error('cannot stop an external PostgreSQL (TEST_DATABASE_URL is set); outage tests need local PostgreSQL binaries');
  };
  return { url: url.toString(), external: true, stop: refuse, start: refuse };
}

/** pg_config knows the server's bindir; Debian keeps it off PATH, hence the version-dir fallback. */
function findPgBindir(): string | undefined {
  const fromPgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const candidates = fromPgConfig.status === 0 ? [fromPgConfig.stdout.trim()] : [];
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root) : [];
  versions.sort((a, b) => Number(b) - Number(a) || b.localeCompare(a)); // newest first
  candidates.push(...versions.map((v) => join(root, v, 'bin')));
  const initdbOnPath = findExecutable('initdb', []);
  if (initdbOnPath) candidates.push(join(initdbOnPath, '..'));
  return candidates.find((dir) => isExecutable(join(dir, 'initdb')));
}

/** initdb and postgres refuse to run as root, so as root we run them as the `postgres` user. */
const runAsPostgresUser = process.getuid?.() === 0;

function pgCommand(bindir: string, tool: string, args: string[]): [string, string[]] {
  const bin = join(bindir, tool);
  return runAsPostgresUser ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

async function runPgTool(bindir: string, tool: string, args: string[], cwd: string): Promise<void> {
  const [cmd, argv] = pgCommand(bindir, tool, args);
  try {
    await execFileAsync(cmd, argv, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`test setup: ${tool} failed: ${(e.stderr || e.message).trim()}`);
  }
}

/** Numeric uid/gid of the postgres account, for chown. */
async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const id = async (flag: string) => Number((await execFileAsync('id', [flag, 'postgres'])).stdout.trim());
  try {
    return { uid: await id('-u'), gid: await id('-g') };
  } catch {
    throw new Error('test setup: running as root but there is no `postgres` user to run initdb as (install Debian package postgresql)');
  }
}

/**
 * Temp dir for one cluster. As root it must belong to `postgres`, and every
 * ancestor must be searchable by that user (a TMPDIR under /root is not).
 */
async function makePgDir(): Promise<string> {
  if (!runAsPostgresUser) return mkdtemp(join(tmpdir(), 'sgw-pg-'));
  const canReach = (dir: string) => spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', dir]).status === 0;
  const base = canReach(tmpdir()) ? tmpdir() : '/tmp';
  const dir = await mkdtemp(join(base, 'sgw-pg-'));
  const { uid, gid } = await postgresIds();
  await chown(dir, uid, gid);
  return dir;
}

/** A private cluster in `dir`, controlled with pg_ctl. */
class LocalPostgres implements PostgresService {
  readonly external = false;
  readonly url: string;

  constructor(
    private readonly bindir: string,
    private readonly dir: string,
    private readonly port: number,
  ) {
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  get logFile(): string {
    return join(this.dir, 'postgres.log');
  }

  async initdb(): Promise<void> {
    // --no-sync and the fsync=off settings below trade durability for speed: data is throwaway.
    const args = ['-D', this.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C'];
    await runPgTool(this.bindir, 'initdb', args, this.dir);
  }

  async start(): Promise<void> {
    if (this.running()) return;
    const opts = [
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`,
      '-c fsync=off -c synchronous_commit=off -c full_page_writes=off',
    ].join(' ');
    const args = ['start', '-D', this.dataDir, '-l', this.logFile, '-w', '-t', '30', '-s', '-o', opts];
    try {
      await runPgTool(this.bindir, 'pg_ctl', args, this.dir);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await logTail(this.logFile)}`);
    }
  }

  async stop(): Promise<void> {
    if (!this.running()) return;
    await runPgTool(this.bindir, 'pg_ctl', ['stop', '-D', this.dataDir, '-m', 'fast', '-w', '-s'], this.dir);
  }

  /** postmaster.pid exists exactly while the server runs (a crash would leave it; not our case). */
  running(): boolean {
    return existsSync(join(this.dataDir, 'postmaster.pid'));
  }

  /** Synchronous variant for the exit hook; immediate mode does not wait for clients. */
  killNow(): void {
    if (!this.running()) return;
    const [cmd, argv] = pgCommand(this.bindir, 'pg_ctl', ['stop', '-D', this.dataDir, '-m', 'immediate', '-w', '-s']);
    spawnSync(cmd, argv, { cwd: this.dir, stdio: 'ignore', timeout: 10_000 });
  }
}

/** `local`: always a disposable server of our own, even when TEST_DATABASE_URL is set (for tests that reconfigure it). */
export async function startPostgres(options: { local?: boolean } = {}): Promise<PostgresService> {
  const externalUrl = process.env.TEST_DATABASE_URL;
  if (externalUrl && !options.local) return externalPostgres(externalUrl);

  const bindir = findPgBindir();
  if (!bindir) {
    throw new Error(
      'test setup: PostgreSQL initdb not found (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH) and TEST_DATABASE_URL not set (install Debian package postgresql)',
    );
  }
  const dir = await makePgDir();
  let current: LocalPostgres | undefined;
  onProcessExit(() => {
    current?.killNow();
    rmSync(dir, { recursive: true, force: true });
  });
  // initdb once; the port is only fixed at start, so a lost port race just retries pg_ctl start.
  await new LocalPostgres(bindir, dir, 0).initdb();
  for (let attempt = 1; ; attempt++) {
    current = new LocalPostgres(bindir, dir, await freePort());
    try {
      await current.start();
      return current;
    } catch (err) {
      if (attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

// ---------------------------------------------------------------------------
// Both at once
// ---------------------------------------------------------------------------

/**
 * Start Redis and PostgreSQL in parallel and stop them in `t`'s teardown.
 * tap runs teardowns last-registered-first, so call this before creating
 * pools/clients whose own teardown must close them while the servers still run.
 */
export async function services(t: {
  teardown(fn: () => unknown): void;
}): Promise<{ redis: RedisService; pg: PostgresService }> {
  const [redis, pgService] = await Promise.allSettled([startRedis(), startPostgres()]);
  // Register teardown for whatever did start, even if the other failed.
  for (const result of [redis, pgService]) {
    if (result.status === 'fulfilled' && !result.value.external) {
      const service = result.value;
      t.teardown(() => service.stop());
    }
  }
  if (redis.status === 'rejected') throw redis.reason;
  if (pgService.status === 'rejected') throw pgService.reason;
  return { redis: redis.value, pg: pgService.value };
}
