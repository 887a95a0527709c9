// A tiny HTTP client over node:http: exact control of header names (underscores, case,
// duplicates) and no automatic redirects or cookie handling, so tests see what a browser would.
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = Record<string, unknown>>(): T;
  /** Set-Cookie values by cookie name (the value part only). */
  cookies: Record<string, string>;
  /** The full Set-Cookie line for a cookie name, to check its attributes. */
  setCookie(name: string): string | undefined;
}

export async function send(
  url: string,
  options: { method?: string; headers?: OutgoingHttpHeaders | Array<[string, string]>; body?: string } = {},
): Promise<Response> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const headerList = Array.isArray(options.headers) ? options.headers.flat() : options.headers;
    const req = httpRequest(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method: options.method ?? 'GET', headers: headerList as OutgoingHttpHeaders, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const setCookies = res.headers['set-cookie'] ?? [];
          const cookies: Record<string, string> = {};
          for (const line of setCookies) {
            const [pair = ''] = line.split(';');
            const eq = pair.indexOf('=');
            cookies[pair.slice(0, eq)] = decodeURIComponent(pair.slice(eq + 1));
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: <T>() => JSON.parse(body) as T,
            cookies,
            setCookie: (name) => setCookies.find((l) => l.startsWith(`${name}=`)),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** Encodes a cookie for a Cookie header the way a browser replays a Set-Cookie value. */
export function cookieHeader(cookies: Record<string, string>): string {
  return Object.entries(cookies)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('; ');
}
