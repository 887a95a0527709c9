// A real WebDAV server for the tests: Debian's Apache httpd with mod_dav and mod_dav_fs, run from
// our own minimal config in a temp dir (never /etc/apache2 or its service), in the foreground on a
// free loopback port. Its access log records method, path, status and the X-Forwarded-User it got.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, runServer } from './proxies.js';
import { freePort } from './services.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** One access-log line: what reached the DAV server. */
export interface DavHit {
  method: string;
  path: string;
  status: number;
  user: string;
}

export interface DavServer {
  url: string;
  /** The served directory (collections and files the tests create land here). */
  root: string;
  /** Every request the server has logged so far. */
  hits(): DavHit[];
  /** The hits, once one matching `wanted` is logged (httpd logs after it has answered). */
  waitForHit(wanted: (hit: DavHit) => boolean): Promise<DavHit[]>;
  /**
   * How many requests were logged, once the log has stopped growing: httpd writes a line after it
   * has answered, so a count taken at once can miss the request just answered (and a count taken
   * after one that must not arrive could miss it arriving).
   */
  settledHitCount(): Promise<number>;
}

const MODULES = '/usr/lib/apache2/modules';
const INSTALL = 'install the Debian package apache2 (mod_dav and mod_dav_fs come with it)';

/** `depthInfinity`: answer PROPFIND of Depth infinity (mod_dav refuses it unless `DavDepthInfinity On`). */
export async function startDavServer(t: Teardown, collections: string[] = [], options: { depthInfinity?: boolean } = {}): Promise<DavServer> {
  const httpd = findBinary('apache2', INSTALL);
  for (const module of ['mod_mpm_event', 'mod_authz_core', 'mod_dav', 'mod_dav_fs']) {
    if (!existsSync(join(MODULES, `${module}.so`))) throw new Error(`${MODULES}/${module}.so not found: ${INSTALL}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'sgw-dav-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  const locks = join(dir, 'locks');
  for (const sub of [root, locks, ...collections.map((c) => join(root, c))]) mkdirSync(sub, { recursive: true });
  // Started as root, httpd serves as `nobody`, which must be able to write what DAV creates.
  for (const sub of [dir, root, locks, ...collections.map((c) => join(root, c))]) chmodSync(sub, 0o777);
  const port = await freePort();
  const log = join(dir, 'access.log');
  writeFileSync(
    join(dir, 'httpd.conf'),
    `ServerRoot ${dir}
ServerName 127.0.0.1
Listen 127.0.0.1:${port}
PidFile ${dir}/httpd.pid
ErrorLog ${dir}/error.log
LoadModule mpm_event_module ${MODULES}/mod_mpm_event.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule dav_module ${MODULES}/mod_dav.so
LoadModule dav_fs_module ${MODULES}/mod_dav_fs.so
User nobody
Group nogroup
LogFormat "%m %U %>s %{X-Forwarded-User}i" dav
CustomLog ${log} dav
DAVLockDB ${locks}/DAVLock
DocumentRoot ${root}
<Directory ${root}>
  Dav On
  DavDepthInfinity ${options.depthInfinity === true ? 'On' : 'Off'}
  Require all granted
</Directory>
`,
  );
  await runServer(t, httpd, ['-f', join(dir, 'httpd.conf'), '-DFOREGROUND'], port);
  const server: DavServer = {
    url: `http://127.0.0.1:${port}`,
    root,
    async waitForHit(wanted) {
      for (let i = 0; i < 100; i++) {
        const hits = server.hits();
        if (hits.some(wanted)) return hits;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return server.hits();
    },
    async settledHitCount() {
      let count = server.hits().length;
      for (let still = 0; still < 3; ) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        const now = server.hits().length;
        still = now === count ? still + 1 : 0;
        count = now;
      }
      return count;
    },
    hits() {
      if (!existsSync(log)) return [];
      return readFileSync(log, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => {
          const [method = '', path = '', status = '0', user = '-'] = line.split(' ');
          return { method, path, status: Number(status), user };
        });
    },
  };
  return server;
}
