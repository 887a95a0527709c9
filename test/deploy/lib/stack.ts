// Helpers for tests that run deploy/ files for real: the example legacy app as a child process,
// the example seed applied to a test database, and a browser-like form login.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { send, type Response } from '../../helpers/http.js';

const examples = new URL('../../../deploy/examples/', import.meta.url);

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Starts deploy/examples/legacy-app.mjs on a free loopback port; stopped (by its pid) in teardown. */
export async function startLegacyApp(t: Teardown, replica: string): Promise<string> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('legacy-app.mjs', examples))], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', REPLICA: replica },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`legacy app exited (${code}) before listening: ${out}`)));
  });
}

/** Runs deploy/examples/seed.sql, as docker-entrypoint-initdb.d would. */
export async function applySeed(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(readFileSync(new URL('seed.sql', examples), 'utf8'));
  } finally {
    await client.end();
  }
}

/** The same database, reached as the user and password of another URL (the deploy file's role). */
export function asUserOf(databaseUrl: string, credentialsFrom: string): string {
  const url = new URL(databaseUrl);
  const from = new URL(credentialsFrom);
  url.username = from.username;
  url.password = from.password;
  return url.toString();
}

function setCookies(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of res.headers['set-cookie'] ?? []) {
    const [pair = ''] = line.split(';');
    const eq = pair.indexOf('=');
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

const cookieLine = (jar: Record<string, string>) =>
  Object.entries(jar)
    .map(([k, v]) => `${k}=${v}`)
    .join('; ');

/**
 * Signs in the way a browser does: follows the redirect to the login page, keeps its cookies,
 * submits the form with every hidden field it carries. Returns the final POST response and the jar.
 */
export async function formLogin(baseUrl: string, username: string, password: string): Promise<{ res: Response; jar: Record<string, string> }> {
  const first = await send(`${baseUrl}/`, { headers: { accept: 'text/html' } });
  if (first.status !== 302) throw new Error(`expected a redirect to the login page, got ${first.status}`);
  const loginUrl = new URL(String(first.headers.location), baseUrl);
  const page = await send(loginUrl.toString(), { headers: { accept: 'text/html' } });
  const jar = setCookies(page);
  const form = /<form[^>]*method="post"[^>]*>([\s\S]*?)<\/form>/i.exec(page.body);
  if (!form) throw new Error(`no sign-in form on ${loginUrl}: ${page.status}`);
  const action = /action="([^"]*)"/i.exec(form[0])?.[1] ?? loginUrl.pathname;
  const fields = new URLSearchParams();
  for (const input of (form[1] ?? '').matchAll(/<input\b[^>]*>/gi)) {
    const tag = input[0];
    if (!/type="hidden"/i.test(tag)) continue;
    const name = /name="([^"]*)"/i.exec(tag)?.[1];
    const value = /value="([^"]*)"/i.exec(tag)?.[1] ?? '';
    if (name) fields.set(name, value.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>'));
  }
  fields.set('username', username);
  fields.set('password', password);
  const res = await send(new URL(action.replace(/&amp;/g, '&'), loginUrl).toString(), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(baseUrl).origin, cookie: cookieLine(jar), accept: 'text/html' },
    body: fields.toString(),
  });
  Object.assign(jar, setCookies(res));
  return { res, jar };
}

export { cookieLine };
