// The import rules of src/ (docs/ARCHITECTURE.md), checked on every import and re-export of every
// file under src/ as the TypeScript parser reads them (`import`, `import type`, `export … from`,
// `import('…')` with a literal path). Type-only imports count as imports everywhere except where
// rule 4 says otherwise: a cycle of types still ties two files together.
//
// 1. No cycle: no file reaches itself by following imports.
// 2. Low rooms take options: no file in access/, identity/, session/ or users/ imports config/ or
//    context.ts, neither directly nor through any file it imports. (They receive a small options
//    object, or the Config passed as one, typed by an interface of their own.)
// 3. proxy/ imports nothing from login/ except login/logout.ts (the one logout).
// 4. Config enters at the top: only the composition (cli.ts, server.ts, app.ts, reload.ts) and config/ itself
//    import config/ for its values. Every other file may import from config/ types only (`import
//    type`, or every name marked `type`): a type cannot read the environment, so such a file
//    works on the Config it is handed as an option (GatewayDeps carries it to the routes).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const LOW_ROOMS = ['src/access/', 'src/identity/', 'src/session/', 'src/users/'];
// reload.ts: the SIGHUP reload reads the environment again, for server.ts.
const COMPOSITION = new Set(['src/cli.ts', 'src/server.ts', 'src/app.ts', 'src/reload.ts']);
const isConfigOrContext = (file: string) => file.startsWith('src/config/') || file === 'src/context.ts';

interface Import {
  from: string;
  to: string;
  typeOnly: boolean;
  line: number;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** `./x.js` from src/a/b.ts → src/a/x.ts; null for packages and node: built-ins. */
function resolveSpecifier(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  return relative(ROOT, resolve(ROOT, dirname(from), specifier)).replace(/\.js$/, '.ts').replace(/\.mjs$/, '.mts');
}

function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: Import[] = [];
  const add = (node: ts.Node, specifier: ts.Expression, typeOnly: boolean) => {
    if (!ts.isStringLiteralLike(specifier)) return;
    const to = resolveSpecifier(file, specifier.text);
    if (to !== null) found.push({ from: file, to, typeOnly, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const bindings = clause?.namedBindings;
      const everyNameTyped = bindings !== undefined && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly) && clause?.name === undefined;
      add(node, node.moduleSpecifier, clause !== undefined && (clause.isTypeOnly || everyNameTyped));
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      const clause = node.exportClause;
      const everyNameTyped = clause !== undefined && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((e) => e.isTypeOnly);
      add(node, node.moduleSpecifier, node.isTypeOnly || everyNameTyped);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0]) {
      add(node, node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const FILES = sourceFiles('src');
const ALL_IMPORTS = FILES.flatMap(importsOf);
const IMPORTS = ALL_IMPORTS;
const where = (i: Import) => `${i.from}:${i.line} imports ${i.to}`;

function graph(imports: Import[]): Map<string, Import[]> {
  const edges = new Map<string, Import[]>(FILES.map((f) => [f, []]));
  for (const i of imports) edges.get(i.from)?.push(i);
  return edges;
}

/** Tarjan's strongly connected components; every component of more than one file, or a file importing itself, is a cycle. */
function cycles(edges: Map<string, Import[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (file: string) => {
    index.set(file, counter);
    low.set(file, counter);
    counter++;
    stack.push(file);
    onStack.add(file);
    for (const { to } of edges.get(file) ?? []) {
      if (!index.has(to)) {
        connect(to);
        low.set(file, Math.min(low.get(file) ?? 0, low.get(to) ?? 0));
      } else if (onStack.has(to)) {
        low.set(file, Math.min(low.get(file) ?? 0, index.get(to) ?? 0));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop();
      if (member === undefined) break;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    const selfImport = (edges.get(file) ?? []).some((i) => i.to === file);
    if (component.length > 1 || selfImport) found.push(component.sort());
  };
  for (const file of edges.keys()) if (!index.has(file)) connect(file);
  return found;
}

/** The chain of imports from `start` to the first file `target` accepts, or null. */
function pathTo(edges: Map<string, Import[]>, start: string, target: (file: string) => boolean): Import[] | null {
  const via = new Map<string, Import>();
  const queue = [start];
  const seen = new Set(queue);
  while (queue.length > 0) {
    const file = queue.shift() as string;
    for (const i of edges.get(file) ?? []) {
      if (seen.has(i.to)) continue;
      seen.add(i.to);
      via.set(i.to, i);
      if (target(i.to)) {
        const chain: Import[] = [];
        for (let step: Import | undefined = i; step; step = via.get(step.from)) chain.unshift(step);
        return chain;
      }
      queue.push(i.to);
    }
  }
  return null;
}

t.test('the scan reads the imports of src/', async (t) => {
  t.ok(FILES.length > 40, `${FILES.length} files under src/`);
  t.ok(FILES.includes('src/config/config.ts') && FILES.includes('src/server.ts'));
  const missing = ALL_IMPORTS.filter((i) => !FILES.includes(i.to)).map(where);
  t.same(missing, [], 'every relative import names a file under src/');
  t.ok(ALL_IMPORTS.some((i) => i.from === 'src/cli.ts' && i.to === 'src/config/config.ts' && !i.typeOnly), 'cli.ts imports loadConfig: a value');
  t.ok(ALL_IMPORTS.some((i) => i.from === 'src/context.ts' && i.to === 'src/config/config.ts' && i.typeOnly), 'context.ts imports Config: a type');
});

function lowRoomViolations(imports: Import[]): string[] {
  const edges = graph(imports);
  return FILES.filter((f) => LOW_ROOMS.some((room) => f.startsWith(room)))
    .map((f) => pathTo(edges, f, isConfigOrContext))
    .filter((chain) => chain !== null)
    .map((chain) => chain.map(where).join(', which '));
}

function proxyLoginViolations(imports: Import[]): string[] {
  return imports.filter((i) => i.from.startsWith('src/proxy/') && i.to.startsWith('src/login/') && i.to !== 'src/login/logout.ts').map(where);
}

function configValueViolations(imports: Import[]): string[] {
  return imports.filter((i) => i.to.startsWith('src/config/') && !i.typeOnly && !COMPOSITION.has(i.from) && !i.from.startsWith('src/config/')).map(where);
}

t.test('no import cycle', async (t) => {
  t.same(cycles(graph(IMPORTS)), [], 'files that import each other, directly or around a loop');
});

t.test('access/, identity/, session/ and users/ import neither config/ nor context.ts, directly or through another file', async (t) => {
  t.same(lowRoomViolations(IMPORTS), [], "take a small options object (an interface of the room's own) instead");
});

t.test('proxy/ imports nothing from login/ but login/logout.ts', async (t) => {
  t.same(proxyLoginViolations(IMPORTS), []);
});

t.test('below cli.ts, server.ts and app.ts, config/ is imported for its types only', async (t) => {
  t.same(configValueViolations(IMPORTS), [], 'receive the config (or a few of its fields) as an option; use `import type`');
});

// The checks above must be able to fail: each finds a violation planted in a copy of the imports.
t.test('each rule catches a planted violation', async (t) => {
  const plant = (from: string, to: string, typeOnly = false): Import[] => [...IMPORTS, { from, to, typeOnly, line: 1 }];
  t.not(cycles(graph(plant('src/errors.ts', 'src/app.ts', true))).length, 0, 'a cycle through app.ts, even of types');
  const through = lowRoomViolations(plant('src/errors.ts', 'src/context.ts', true));
  t.ok(through.some((v) => /^src\/session\/manager\.ts:\d+ imports src\/errors\.ts, which src\/errors\.ts:1 imports src\/context\.ts$/.test(v)), 'session/ reaching context.ts through errors.ts');
  t.ok(lowRoomViolations(plant('src/users/user-store.ts', 'src/config/config.ts', true)).some((v) => v.startsWith('src/users/user-store.ts:1 imports src/config/config.ts')), 'users/ importing a type of config/');
  const planted = (v: string) => v.startsWith('src/proxy/websocket.ts:1 imports');
  t.ok(proxyLoginViolations(plant('src/proxy/websocket.ts', 'src/login/routes.ts')).some(planted), 'proxy/ importing login/routes.ts');
  t.notOk(proxyLoginViolations(plant('src/proxy/websocket.ts', 'src/login/logout.ts')).some(planted), 'proxy/ importing login/logout.ts');
  const door = (v: string) => v.startsWith('src/login/routes.ts:1 imports');
  t.ok(configValueViolations(plant('src/login/routes.ts', 'src/config/config.ts')).some(door), 'a door importing a value of config/');
  t.notOk(configValueViolations(plant('src/login/routes.ts', 'src/config/config.ts', true)).some(door), 'a door importing a type of config/');
});
