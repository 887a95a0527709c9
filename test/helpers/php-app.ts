// A real PHP front controller for the tests: Debian's php-cgi as a FastCGI server behind nginx,
// configured the way Laravel's and Symfony's documentation configure it (every path without a
// file goes to index.php). The script routes like those frameworks do: the path is the request
// URI without the script name, so `/index.php/admin` is routed as `/admin`. Nothing is served
// from /etc; everything lives in a temp dir and stops with the test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNginx } from './nginx.js';
import { findBinary, runServer } from './proxies.js';
import { freePort } from './services.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** What the front controller answers: the route it took and what it received. */
export interface PhpEcho {
  route: string;
  requestUri: string;
  user: string | null;
}

// Symfony's Request::getPathInfo(), reduced: the request URI's path without the base URL (the
// script name) when it starts with it.
const FRONT_CONTROLLER = `<?php
$uri = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$script = $_SERVER['SCRIPT_NAME'];
$route = strpos($uri, $script) === 0 ? substr($uri, strlen($script)) : $uri;
header('Content-Type: application/json');
echo json_encode(['route' => $route === '' ? '/' : $route, 'requestUri' => $_SERVER['REQUEST_URI'], 'user' => $_SERVER['HTTP_X_FORWARDED_USER'] ?? null]);
`;

export async function startPhpApp(t: Teardown): Promise<{ url: string }> {
  const phpCgi = findBinary('php-cgi', "install Debian's php-cgi");
  const root = mkdtempSync(join(tmpdir(), 'sgw-php-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'index.php'), FRONT_CONTROLLER);
  const fastcgi = await freePort();
  // PHP_FCGI_MAX_REQUESTS=0: php-cgi would otherwise exit after 500 requests.
  await runServer(t, phpCgi, ['-b', `127.0.0.1:${fastcgi}`], fastcgi, { PHP_FCGI_CHILDREN: '0', PHP_FCGI_MAX_REQUESTS: '0' });
  const url = await startNginx(
    t,
    (port) => `
  server {
    listen 127.0.0.1:${port};
    root ${root};
    index index.php;
    location / { try_files $uri $uri/ /index.php?$query_string; }
    location ~ \\.php$ {
      fastcgi_pass 127.0.0.1:${fastcgi};
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      include /etc/nginx/fastcgi_params;
    }
  }`,
  );
  return { url };
}
