// Real reverse proxies (Debian's nginx and caddy) for the forward-auth tests: find the binary (or
// fail with one line), render a shipped example with test addresses, run it in the foreground in a
// temp dir and stop it by PID.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Test } from 'tap';
import { hiddenField } from '../regressions/setup.js';
import { runCli } from './cli.js';
import { login, type TestGateway } from './gateway.js';
import { cookieHeader, send } from './http.js';
import { onProcessExit } from './services.js';
import type { Echo } from './upstream.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export function findBinary(name: string, installHint: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']) if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  const which = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim() !== '') return which.stdout.trim();
  throw new Error(`${name} not found: ${installHint}`);
}

/** A shipped example with exact strings replaced; fails loudly if one is not there exactly once. */
export function renderExample(file: string, replacements: Array<[string, string]>): string {
  let text = readFileSync(file, 'utf8');
  for (const [from, to] of replacements) {
    if (text.split(from).length !== 2) throw new Error(`${file}: expected exactly one "${from}"`);
    text = text.replace(from, to);
  }
  return text;
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a server in the foreground until the test ends; resolves once it listens on `port`. */
export async function runServer(t: Teardown, command: string, args: string[], port: number, env: Record<string, string> = {}): Promise<void> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
  };
  const unregister = onProcessExit(stop);
  t.teardown(async () => {
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', resolve));
    stop();
    unregister();
    await exited;
  });
  await Promise.race([
    waitForPort(port, 10_000),
    new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`${command} exited (${code}): ${stderr.trim().slice(-500)}`)))),
  ]);
}

/** Signs in through a proxy as a browser does: the login page, its CSRF pair, the form with its rd. */
export async function browserSignIn(site: string, loginUrl: string, username: string, password: string): Promise<{ cookie: string; next: string }> {
  const browser = { accept: 'text/html,application/xhtml+xml' };
  const page = await send(loginUrl, { headers: browser });
  const csrf = hiddenField(page.body, 'csrf');
  const rd = hiddenField(page.body, 'rd');
  const csrfCookie = page.cookies.sgw_csrf;
  if (page.status !== 200 || !csrf || !csrfCookie || rd === undefined) throw new Error(`login page through the proxy: ${page.status}`);
  const res = await send(`${site}/_auth/login`, {
    method: 'POST',
    headers: { ...browser, 'content-type': 'application/x-www-form-urlencoded', origin: site, cookie: cookieHeader({ sgw_csrf: csrfCookie }) },
    body: new URLSearchParams({ username, password, csrf, rd }).toString(),
  });
  const cookie = res.cookies.sgw_session;
  if (res.status !== 303 || !cookie) throw new Error(`form login through the proxy: ${res.status} ${res.body.slice(0, 200)}`);
  return { cookie, next: res.headers.location ?? '' };
}

/** What a CGI-style app saw: the WSGI environ's HTTP_* variables (spellings merged as CGI does). */
export interface CgiView {
  method: string;
  path: string;
  query: string;
  environ: Record<string, string>;
}

// Python's wsgiref, as shipped: it folds header names the CGI way (`-` and `_` alike, any case)
// and joins repeated ones with a comma, like PHP's built-in server, older gunicorn, Puma and uWSGI.
const WSGI_APP = `import json, sys
from wsgiref.simple_server import make_server, WSGIRequestHandler
class Quiet(WSGIRequestHandler):
    def log_message(self, *args): pass
def app(environ, start_response):
    seen = {k: v for k, v in environ.items() if k.startswith('HTTP_')}
    body = json.dumps({'method': environ['REQUEST_METHOD'], 'path': environ.get('PATH_INFO', ''), 'query': environ.get('QUERY_STRING', ''), 'environ': seen}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
make_server('127.0.0.1', int(sys.argv[1]), app, handler_class=Quiet).serve_forever()
`;

/** A CGI-style app (Python's wsgiref) on loopback, stopped with the test; answers with its CgiView. */
export async function startCgiApp(t: Teardown, dir: string, port: number): Promise<void> {
  const file = `${dir}/cgi_app.py`;
  writeFileSync(file, WSGI_APP);
  await runServer(t, findBinary('python3', "install Debian's python3"), [file, String(port)], port);
}

const SPOOFED_VALUES: Record<string, string> = {
  'X-Forwarded-User': 'mallory',
  'X-Forwarded-Email': 'mallory@evil.example',
  'X-Forwarded-Groups': 'admins',
  'X-Gateway-Identity': 'forged.token.sig',
};

/**
 * Every spelling of every identity header a client could send: each `-` as `-` or `_`, each in
 * its canonical, lower and upper case (X-Forwarded-User, x_forwarded_user, X-FORWARDED_USER, …).
 */
export function everyIdentitySpelling(): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(SPOOFED_VALUES)) {
    const parts = name.split('-');
    for (let mask = 0; mask < 2 ** (parts.length - 1); mask++) {
      const spelt = parts.reduce((acc, part, i) => (i === 0 ? part : `${acc}${mask & (1 << (i - 1)) ? '_' : '-'}${part}`), '');
      for (const variant of new Set([spelt, spelt.toLowerCase(), spelt.toUpperCase()])) pairs.push([variant, `${value}-${pairs.length}`]);
    }
  }
  return pairs;
}

/** The four identity variables a CGI-style app reads, as it reads them (absent ones left out). */
export function cgiIdentity(view: CgiView): Record<string, string> {
  const seen: Record<string, string> = {};
  for (const key of ['HTTP_X_FORWARDED_USER', 'HTTP_X_FORWARDED_EMAIL', 'HTTP_X_FORWARDED_GROUPS', 'HTTP_X_GATEWAY_IDENTITY']) {
    const value = view.environ[key];
    if (value !== undefined) seen[key] = value;
  }
  return seen;
}

/** SPEC 4: headers that make apps re-route or re-address a request; the proxy in front removes them. */
export const REROUTING_HEADERS = ['Forwarded', 'X-Real-IP', 'X-Original-URL', 'X-Rewrite-URL', 'X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override', 'X-Forwarded-Prefix', 'X-Forwarded-Port', 'X-Forwarded-Server', 'X-Client-IP', 'True-Client-IP', 'CF-Connecting-IP'];

/**
 * Through a forward-auth proxy in front of an echo app (gateway with GATEWAY_BASIC_AUTH=true, the
 * public path `/public`): an API token, Basic with the password and Basic with a token sign the
 * user in and never reach the app; an Authorization of the app's own (the user signed in with the
 * session cookie) reaches it as sent, a long one with long app cookies too.
 */
export async function authorizationReachesAppOnlyWhenOwn(t: Test, site: string, gateway: TestGateway, account: { user: string; password: string }): Promise<void> {
  const { user, password } = account;
  const env = gateway.env;
  t.equal((await runCli(['migrate'], { env })).code, 0, 'migrate');
  const token = (await runCli(['tokens', 'create', user, '--name', `proxy-${Date.now()}`], { env })).stdout.trim();
  t.match(token, /^sgw_pat_/, 'a token');
  const basic = (name: string, password: string) => `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`;
  const echoOf = async (path: string, headers: Record<string, string>) => {
    const res = await send(`${site}${path}`, { headers: { accept: 'application/json', ...headers } });
    return { status: res.status, echo: res.status === 200 ? res.json<Echo>() : null };
  };
  for (const [what, authorization] of [
    ['an API token', `Bearer ${token}`],
    ['Basic with the password', basic(user, password)],
    ['Basic with a token', basic(user, token)],
  ] as const) {
    const { status, echo } = await echoOf('/app/api', { authorization });
    t.equal(status, 200, `${what}: signed in`);
    t.equal(echo?.headers['x-forwarded-user'], user, `${what}: as ${user}`);
    t.equal(echo?.headers.authorization, undefined, `${what}: the app does not receive it`);
    t.equal((await echoOf('/public/x', { authorization })).echo?.headers.authorization, undefined, `${what} on a public path: nor there`);
  }
  const session = cookieHeader({ sgw_session: await login(gateway, user, password) });
  const own = 'Bearer the-apps-own.jwt.value';
  const signedIn = await echoOf('/app/api', { cookie: session, authorization: own });
  t.equal(signedIn.status, 200);
  t.equal(signedIn.echo?.headers.authorization, own, "with a session cookie: the app's own Authorization arrives as sent");
  t.equal((await echoOf('/public/x', { authorization: own })).echo?.headers.authorization, own, 'and on a public path');
  // Large own credentials (a long JWT, many app cookies) still fit the 204 that carries them back.
  const longAuthorization = `Bearer ${'j'.repeat(6_000)}`;
  const longCookie = `app_state=${'c'.repeat(6_000)}`;
  const large = await echoOf('/app/api', { cookie: `${session}; ${longCookie}`, authorization: longAuthorization });
  t.equal(large.status, 200, 'a 6 kB Authorization and a 6 kB cookie pass');
  t.equal(large.echo?.headers.authorization, longAuthorization);
  t.equal(large.echo?.headers.cookie, longCookie);
}
