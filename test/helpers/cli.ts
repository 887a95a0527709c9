// Runs the real `session-gateway` bin (node dist/cli.js) as a child process, the way operators do.
// ensureBuilt() compiles src/ to dist/ when dist/ is missing or older than src/; a lock keeps
// parallel test files from rewriting dist/ while another one is running a child from it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { send } from './http.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'dist', 'cli.js');

const BUILD_TIMEOUT_MS = 90_000;
const LOCK_STALE_MS = 120_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** True when some src/**.ts has no dist/**.js or a dist file older than its source. */
function distIsStale(): boolean {
  const src = join(ROOT, 'src');
  return sourceFiles(src).some((file) => {
    const built = join(ROOT, 'dist', relative(src, file)).replace(/\.ts$/, '.js');
    try {
      return statSync(built).mtimeMs < statSync(file).mtimeMs;
    } catch {
      return true;
    }
  });
}

async function withBuildLock<T>(work: () => Promise<T>): Promise<T> {
  const lock = join(tmpdir(), `session-gateway-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}.lock`);
  const deadline = Date.now() + BUILD_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > LOCK_STALE_MS) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`test setup: build lock ${lock} held too long`);
      await sleep(100);
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Compiles src/ to dist/ (tsconfig.build.json) unless dist/ is already up to date. */
export async function ensureBuilt(): Promise<void> {
  await withBuildLock(async () => {
    if (!distIsStale()) return;
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { env: { PATH: process.env.PATH ?? '' }, timeoutMs: BUILD_TIMEOUT_MS });
    if (result.code !== 0) throw new Error(`test setup: tsc -p tsconfig.build.json failed:\n${result.stdout}${result.stderr}`);
  });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Non-empty lines of stdout / stderr. */
  out: string[];
  err: string[];
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

async function run(command: string, args: string[], options: { env: Record<string, string>; stdin?: string; timeoutMs: number }): Promise<CliResult> {
  const child = spawn(command, args, { cwd: ROOT, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdin.on('error', () => undefined); // the child may exit before reading stdin
  child.stdin.end(options.stdin ?? '');
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  }, options.timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve([c, s]));
  });
  clearTimeout(timer);
  return { code, signal, stdout, stderr, out: lines(stdout), err: lines(stderr) };
}

/**
 * Runs `node dist/cli.js ...args` to completion with exactly `env` (plus PATH) and `stdin`.
 * A child still running after `timeoutMs` is killed, so a CLI that wrongly starts serving fails
 * the test instead of hanging it.
 */
export async function runCli(args: string[], options: { env: Record<string, string>; stdin?: string; timeoutMs?: number }): Promise<CliResult> {
  return run(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...options.env }, timeoutMs: options.timeoutMs ?? 30_000, ...(options.stdin !== undefined ? { stdin: options.stdin } : {}) });
}

export interface ServeProcess {
  child: ChildProcess;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code and signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Spawns a long-running `node dist/cli.js ...args`; teardown kills it by PID if still alive. */
export function spawnCli(t: Teardown, args: string[], env: Record<string, string>): ServeProcess {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  t.teardown(async () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Polls `url` until it answers `status` (or the process dies / the deadline passes). */
export async function waitForStatus(url: string, status: number, options: { timeoutMs?: number; process?: ServeProcess } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let last = 'no answer';
  while (Date.now() < deadline) {
    const child = options.process?.child;
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before ${url} answered ${status}:\n${options.process?.stderr()}${options.process?.stdout()}`);
    }
    try {
      const res = await send(url);
      if (res.status === status) return;
      last = `${res.status} ${res.body}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer ${status} in time (last: ${last})`);
}

/** Two distinct free loopback ports for `serve`, and the variables that put its proxy and admin listeners there, in front of `upstream`. */
export async function loopbackServe(upstream: string): Promise<{ port: number; adminPort: number; env: Record<string, string> }> {
  const port = await freePort();
  let adminPort = await freePort();
  while (adminPort === port) adminPort = await freePort();
  const env = { GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(port), GATEWAY_ADMIN_HOST: '127.0.0.1', GATEWAY_ADMIN_PORT: String(adminPort), GATEWAY_UPSTREAM: upstream };
  return { port, adminPort, env };
}

/** A port that was free a moment ago on 127.0.0.1 (for child processes that must be told one). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('test setup: no free port'))));
    });
  });
}
