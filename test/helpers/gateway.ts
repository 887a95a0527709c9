// Starts a real gateway (the same startGateway the CLI uses) on loopback ports chosen by the OS,
// against the services a test started, and captures its JSON log lines for assertions.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../src/users/migrations.js';
import { addUser } from '../../src/users/user-admin.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import { createLogger } from '../../src/logger.js';
import { startGateway, type RunningGateway } from '../../src/server.js';
import { cookieHeader, send } from './http.js';

export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

export interface TestGateway {
  url: string;
  adminUrl: string;
  config: Config;
  running: RunningGateway;
  /** Every JSON log line written so far. */
  logs: string[];
  /** Text the gateway announced outside the log (the embedded-mode password). */
  announced: string[];
  /** The environment it runs with: what the CLI needs to act on the same stores. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A random Redis key prefix, so tests sharing one Redis (TEST_REDIS_URL) never see each other. */
export function uniquePrefix(): string {
  return `sgwtest:${randomBytes(4).toString('hex')}:`;
}

export async function startTestGateway(t: Teardown, env: Record<string, string>): Promise<TestGateway> {
  const fullEnv = {
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: '0',
    GATEWAY_ADMIN_HOST: '127.0.0.1',
    GATEWAY_ADMIN_PORT: '0',
    GATEWAY_SESSION_SECRET: TEST_SECRET,
    LOG_LEVEL: 'info',
    ...env,
  };
  const config = loadConfig(fullEnv);
  const logs: string[] = [];
  const announced: string[] = [];
  const logger = createLogger(config.logLevel, { write: (line: string) => void logs.push(line) });
  // running.reload() reads the same variables again (what SIGHUP does in the CLI).
  const running = await startGateway(config, { logger, announce: (text) => void announced.push(text), loadConfig: () => loadConfig(fullEnv) });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await running.shutdown();
  };
  t.teardown(stop);
  return {
    url: `http://127.0.0.1:${running.proxyPort}`,
    adminUrl: `http://127.0.0.1:${running.adminPort}`,
    config,
    running,
    logs,
    announced,
    env: fullEnv,
    stop,
  };
}

/** Creates gateway_users and the given users (argon2id via the same code as the CLI). */
export async function seedUsers(
  t: Teardown,
  databaseUrl: string,
  users: Array<{ username: string; password: string; email?: string; groups?: string[] }>,
): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  // Outage tests stop PostgreSQL under this pool: an idle client's error must not crash the test.
  pool.on('error', () => undefined);
  t.teardown(() => pool.end());
  await migrate(pool);
  for (const u of users) await addUser(pool, { username: u.username, password: u.password, email: u.email ?? null, groups: u.groups ?? [] });
  return pool;
}

/** Logs in through the JSON API and returns the session cookie value (fails the test otherwise). */
export async function login(gateway: TestGateway, username: string, password: string): Promise<string> {
  const res = await send(`${gateway.url}${gateway.config.authPrefix}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const cookie = res.cookies[gateway.config.cookieName];
  if (res.status !== 200 || !cookie) throw new Error(`login as ${username} failed: ${res.status} ${res.body}`);
  return cookie;
}

/** Headers that present a session cookie. */
export function withSession(gateway: TestGateway, cookie: string, extra: Record<string, string> = {}): Record<string, string> {
  return { cookie: cookieHeader({ [gateway.config.cookieName]: cookie }), ...extra };
}
