// A real nginx (Debian's nginx-light) running a test's own site config in the foreground, one
// process, everything it writes inside a temp dir; stopped by PID when the test ends.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, runServer } from './proxies.js';
import { freePort } from './services.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** `site(port)` is the http{} content (a server listening on 127.0.0.1:port); returns nginx's URL. */
export async function startNginx(t: Teardown, site: (port: number) => string): Promise<string> {
  const nginx = findBinary('nginx', "install Debian's nginx-light (apt-get install -y nginx-light)");
  const dir = mkdtempSync(join(tmpdir(), 'sgw-nginx-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  const port = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
${site(port)}
}
`,
  );
  await runServer(t, nginx, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], port);
  return `http://127.0.0.1:${port}`;
}

/**
 * The auth_request snippet as it is widely copied (nginx's own docs, many blog posts): the
 * subrequest names only the URI, X-Original-URI, and passes every client header on.
 */
export function uriOnlyAuthRequestSite(gatewayPort: number, appPort: number): (port: number) => string {
  return (port) => `
  server {
    listen 127.0.0.1:${port};
    location = /_auth/verify {
      internal;
      proxy_pass http://127.0.0.1:${gatewayPort};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
    }
    location / {
      auth_request /_auth/verify;
      auth_request_set $sgw_user $upstream_http_x_forwarded_user;
      proxy_pass http://127.0.0.1:${appPort};
      proxy_set_header X-Forwarded-User $sgw_user;
    }
  }`;
}
