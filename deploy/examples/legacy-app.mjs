// A stand-in for an unmodified legacy app: no login code, it only reads X-Forwarded-User.
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 8080);
createServer((req, res) => {
  const user = req.headers['x-forwarded-user'] ?? '(nobody)';
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>Legacy app</title><h1>Hello, ${String(user).replace(/[<>&"]/g, '')}</h1>
<p>Served by replica ${process.env.HOSTNAME ?? 'local'}.</p><form method="post" action="/_auth/logout"><button>Sign out</button></form>`);
}).listen(port, process.env.HOST ?? '0.0.0.0');
