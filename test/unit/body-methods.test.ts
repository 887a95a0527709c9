// The body scanner alone: what a form, multipart or JSON body names as its method, however the
// body is cut into chunks, and what it cannot read.
import t from 'tap';
import { createBodyMethodScanner, type BodyScan } from '../../src/access/body-methods.js';
import { overridingBodyType, type OverridingBody } from '../../src/access/method-override.js';

/** Scans `body` fed in chunks of `size` bytes. */
async function scan(type: OverridingBody, contentType: string, body: string | Buffer, size = 1 << 30): Promise<BodyScan> {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const scanner = createBodyMethodScanner(type, contentType);
  for (let i = 0; i < bytes.length; i += size) scanner.write(bytes.subarray(i, i + size));
  return scanner.end();
}

const FORM = 'application/x-www-form-urlencoded';
const B = 'XyZ';
const MULTIPART = `multipart/form-data; boundary=${B}`;
const part = (headers: string, value: string) => `--${B}\r\n${headers}\r\n\r\n${value}\r\n`;
const multipart = (...parts: string[]) => `${parts.join('')}--${B}--\r\n`;

t.test('forms: `_method` in any spelling PHP reads, the value as apps upper-case it', async (t) => {
  const cases: Array<[string, string[] | null]> = [
    ['a=1;_method=DELETE', ['DELETE']],
    ['+'.repeat(5_000) + '_method=DELETE', ['DELETE']],
    ['%20'.repeat(2_000) + '_method=PUT', ['PUT']],
    ['  _method=DELETE', ['DELETE']],
    ['%5F%6D%65%74%68%6F%64=DELETE', ['DELETE']],
    ['field=value&'.repeat(1_000) + '_method=PATCH', ['PATCH']],
    ['_method=' + 'D'.repeat(100), null],
    ['note=1&_method=DELETE', ['DELETE']],
    ['_method=delete', ['DELETE']],
    ['.method=PUT&x=1', ['PUT']],
    ['+_method=PATCH', ['PATCH']],
    ['_m%65thod=DELETE', ['DELETE']],
    ['%5Fmethod=DELETE&_method=PUT', ['DELETE', 'PUT']],
    ['_method=POST', null],
    ['method=DELETE&payment_method=PUT', null],
    ['note=' + 'x'.repeat(100_000), null],
    ['', null],
  ];
  for (const [body, methods] of cases) {
    for (const size of [1, 3, 1 << 30]) t.same(await scan('form', FORM, body, size), { ok: true, methods }, `${body.slice(0, 40)} in chunks of ${size}`);
  }
});

t.test('multipart: parts named `_method` in any way an app reads the name, their raw content', async (t) => {
  const cases: Array<[string, string[] | null]> = [
    [multipart(part('Content-Disposition: form-data; name="note"', 'n'), part('Content-Disposition: form-data; name="_method"', 'DELETE')), ['DELETE']],
    [multipart(part('Content-Disposition: form-data; name=" _method"', 'put')), ['PUT']],
    [multipart(part('Content-Disposition: form-data; name="_method"\r\nContent-Type: application/octet-stream', 'DELETE')), ['DELETE']],
    // A file part too: no app takes it for a method, but a reading can only add a check.
    [multipart(part('Content-Disposition: form-data; name="_method"; filename="m.txt"', 'DELETE')), ['DELETE']],
    // A charset is ignored, as PHP and Rack ignore it (a decoder would read these bytes as UTF-16).
    [multipart(part('Content-Disposition: form-data; name="_method"\r\nContent-Type: text/plain; charset=utf-16le', 'DELETE')), ['DELETE']],
    // Rack takes the first name, PHP the last: both count.
    [multipart(part('Content-Disposition: form-data; name="_method"; name="x"', 'DELETE')), ['DELETE']],
    [multipart(part('Content-Disposition: form-data; name="x"; name="_method"', 'PUT')), ['PUT']],
    [multipart(part("Content-Disposition: form-data; name*=utf-8''%5Fmethod", 'PATCH')), ['PATCH']],
    [multipart(part('Content-Disposition: form-data; name=_method', 'DELETE')), ['DELETE']],
    [multipart(part('content-disposition: form-data; name=".method"', 'delete')), ['DELETE']],
    [`preamble --${B} inside\r\n` + multipart(part('Content-Disposition: form-data; name="_method"', 'DELETE')), ['DELETE']],
    [multipart(part('Content-Disposition: form-data; name="_method"', 'D'.repeat(100))), null],
    [multipart(part('Content-Disposition: form-data; name="payment_method"', 'DELETE')), null],
    [multipart(part('Content-Disposition: form-data; name="upload"; filename="big.bin"', 'x'.repeat(200_000))), null],
  ];
  for (const [body, methods] of cases) {
    for (const size of [1, 7, 1 << 30]) t.same(await scan('multipart', MULTIPART, body, size), { ok: true, methods }, `chunks of ${size}: ${JSON.stringify(methods)}`);
  }
  const truncated = await scan('multipart', MULTIPART, `--${B}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDEL`);
  t.equal(truncated.ok, false, 'a multipart body cut off is not read: the caller refuses it');
  t.equal((await scan('multipart', 'multipart/form-data', 'x')).ok, false, 'no boundary: not readable');
});

t.test('JSON: a top-level `_method` string, escapes decoded; nothing nested, nothing but objects', async (t) => {
  const cases: Array<[string, string[] | null]> = [
    ['{"note":"n","_method":"DELETE"}', ['DELETE']],
    [' {\n "_method" : "put" }', ['PUT']],
    ['{"\\u005fmethod":"DEL\\u0045TE"}', ['DELETE']],
    ['{"\\u005f\\u006d\\u0065\\u0074\\u0068\\u006f\\u0064":"PUT"}', ['PUT']],
    ['{"a":{"_method":"DELETE"},"b":["_method","DELETE"],"c":"_method"}', null],
    ['{"note":"a \\"_method\\": \\"DELETE\\"","x":1}', null],
    ['{"_method":1,"x":"DELETE"}', null],
    ['["_method","DELETE"]', null],
    ['"_method"', null],
    ['{"note":"' + 'x'.repeat(100_000) + '","_method":"PATCH"}', ['PATCH']],
    ['not json', null],
    ['', null],
  ];
  for (const [body, methods] of cases) {
    for (const size of [1, 5, 1 << 30]) t.same(await scan('json', 'application/json', body, size), { ok: true, methods }, `${body.slice(0, 40)} in chunks of ${size}`);
  }
  // A multi-byte character cut between chunks is still one character.
  t.same(await scan('json', 'application/json', '{"nöte":"é","_method":"DELETE"}', 1), { ok: true, methods: ['DELETE'] });
});

t.test('which POST bodies an app reads a `_method` from', async (t) => {
  const cases: Array<[string | undefined, OverridingBody | null]> = [
    ['application/x-www-form-urlencoded; charset=UTF-8', 'form'],
    ['Application/X-WWW-Form-Urlencoded', 'form'],
    [undefined, 'form'], // Rack reads a POST without a Content-Type as a form
    ['multipart/form-data; boundary=x', 'multipart'],
    ['multipart/mixed; boundary=x', 'multipart'], // Rack parses any multipart body
    ['application/json', 'json'],
    ['application/vnd.api+json', 'json'],
    ['text/json', 'json'], // Laravel: any type containing /json or +json
    ['text/plain', null],
    ['application/octet-stream', null],
  ];
  for (const [type, body] of cases) t.equal(overridingBodyType('POST', type), body, String(type));
  t.equal(overridingBodyType('PUT', 'application/x-www-form-urlencoded'), null, 'only a POST is overridden');
});
