// Real PHP for the tests. A front controller: Debian's php-cgi as a FastCGI server behind nginx,
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
  /** The method the app acts on: Symfony's Request::getMethod() with method override on, as Laravel has it. */
  method: string;
  /** The `note` field of a form, multipart or JSON body, as the app read it (null when none). */
  note: string | null;
  requestUri: string;
  user: string | null;
}

// Symfony's Request::getPathInfo(), reduced: the request URI's path without the base URL (the
// script name) when it starts with it. Then CodeIgniter's fallback: with nothing left, a query
// that starts with \`/\` is the route (up to a second \`?\`), so \`/?/admin\` is \`/admin\`. The method
// as Symfony's Request::getMethod() gives it with method override on (Laravel turns it on): a POST's
// X-HTTP-Method-Override header, else its \`_method\` (form body first, then query), upper-cased.
// A JSON body is the input as Laravel's Request makes it: its decoded object stands for the form.
const FRONT_CONTROLLER = `<?php
$method = $_SERVER['REQUEST_METHOD'];
$input = $_POST;
if (preg_match('~^application/(.+\\+)?json~i', $_SERVER['CONTENT_TYPE'] ?? '')) {
  $json = json_decode(file_get_contents('php://input'), true);
  $input = is_array($json) ? $json : [];
}
if ($method === 'POST') {
  $override = $_SERVER['HTTP_X_HTTP_METHOD_OVERRIDE'] ?? $input['_method'] ?? $_GET['_method'] ?? null;
  if (is_string($override) && $override !== '') $method = strtoupper($override);
}
$uri = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$script = $_SERVER['SCRIPT_NAME'];
$route = strpos($uri, $script) === 0 ? substr($uri, strlen($script)) : $uri;
$query = $_SERVER['QUERY_STRING'] ?? '';
if (trim($route, '/') === '' && strncmp($query, '/', 1) === 0) $route = explode('?', $query, 2)[0];
header('Content-Type: application/json');
echo json_encode(['route' => $route === '' ? '/' : $route, 'method' => $method, 'note' => $input['note'] ?? null, 'requestUri' => $_SERVER['REQUEST_URI'], 'user' => $_SERVER['HTTP_X_FORWARDED_USER'] ?? null]);
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
    # Bodies beyond nginx's default 1 MiB, as a Laravel deployment allows uploads.
    client_max_body_size 16m;
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

/** What PHP's own server put in `$_SERVER` for the headers that carry identity or re-route. */
export type PhpServerView = Record<string, string | null>;

const SERVER_VIEW = `<?php
header('Content-Type: application/json');
$names = ['HTTP_X_FORWARDED_USER', 'HTTP_X_FORWARDED_EMAIL', 'HTTP_X_FORWARDED_GROUPS', 'HTTP_X_GATEWAY_IDENTITY', 'HTTP_X_HTTP_METHOD_OVERRIDE', 'HTTP_X_ORIGINAL_URL', 'HTTP_X_FORWARDED_HOST'];
$seen = [];
foreach ($names as $name) $seen[$name] = $_SERVER[$name] ?? null;
echo json_encode($seen);
`;

/**
 * PHP's built-in web server (the php CLI, which php-cgi depends on) answering every path with the
 * `$_SERVER` entries above: how PHP itself names the headers it got (`.` and `-` become `_`).
 */
export async function startPhpServer(t: Teardown): Promise<{ url: string }> {
  const php = findBinary('php', "install Debian's php-cgi (it brings the php command)");
  const root = mkdtempSync(join(tmpdir(), 'sgw-php-server-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'router.php'), SERVER_VIEW);
  const port = await freePort();
  await runServer(t, php, ['-S', `127.0.0.1:${port}`, '-t', root, join(root, 'router.php')], port);
  return { url: `http://127.0.0.1:${port}` };
}
