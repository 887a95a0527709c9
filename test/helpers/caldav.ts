// A real CalDAV server for the tests: Debian's Radicale, run from our own config in a temp dir
// (never /etc/radicale or its service), on a free loopback port. It trusts the user the proxy in
// front names (`[auth] type = http_x_remote_user`: the X-Remote-User header) and lets any such user
// read and write every collection (`[rights] type = authenticated`): who may see what is left to the
// gateway's rules, as when Radicale runs behind an authenticating proxy.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, runServer } from './proxies.js';
import { freePort } from './services.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface CalDavServer {
  url: string;
  /** Sends a request to the server itself, as `user` (what the gateway in front would name). */
  send(method: string, path: string, user: string, body?: string, headers?: Record<string, string>): Promise<{ status: number; body: string }>;
  /** Creates a calendar collection (and its parent) as `user`. */
  calendar(path: string, user: string): Promise<void>;
  /** Stores one event with `summary` at `path` (an item of a calendar). */
  event(path: string, user: string, summary: string): Promise<void>;
}

const INSTALL = 'install the Debian package radicale';

export async function startCalDavServer(t: Teardown): Promise<CalDavServer> {
  const radicale = findBinary('radicale', INSTALL);
  const dir = mkdtempSync(join(tmpdir(), 'sgw-caldav-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const config = join(dir, 'config');
  writeFileSync(
    config,
    `[server]
hosts = 127.0.0.1:${port}
[auth]
type = http_x_remote_user
[rights]
type = authenticated
[storage]
filesystem_folder = ${join(dir, 'collections')}
[web]
type = none
[logging]
level = warning
`,
  );
  await runServer(t, radicale, ['--config', config], port);
  const url = `http://127.0.0.1:${port}`;
  const send: CalDavServer['send'] = async (method, path, user, body, headers = {}) => {
    const res = await fetch(`${url}${path}`, { method, headers: { 'x-remote-user': user, ...headers }, ...(body === undefined ? {} : { body }) });
    return { status: res.status, body: await res.text() };
  };
  const expect = async (what: string, answer: Promise<{ status: number; body: string }>, ...statuses: number[]) => {
    const { status, body } = await answer;
    if (!statuses.includes(status)) throw new Error(`Radicale: ${what} answered ${status}: ${body.slice(0, 200)}`);
  };
  return {
    url,
    send,
    async calendar(path, user) {
      const parent = path.replace(/[^/]+\/$/, '');
      if (parent !== '/') await expect(`MKCOL ${parent}`, send('MKCOL', parent, user), 201, 405);
      await expect(`MKCALENDAR ${path}`, send('MKCALENDAR', path, user), 201);
    },
    async event(path, user, summary) {
      const uid = path.replace(/^.*\//, '').replace(/\.ics$/, '');
      const ics = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//session-gateway tests//EN', 'BEGIN:VEVENT', `UID:${uid}`, 'DTSTAMP:20260101T000000Z', 'DTSTART:20260105T100000Z', `SUMMARY:${summary}`, 'END:VEVENT', 'END:VCALENDAR', ''].join('\r\n');
      await expect(`PUT ${path}`, send('PUT', path, user, ics, { 'content-type': 'text/calendar' }), 201);
    },
  };
}
