// A small Dockerfile reader for tests: enough of the syntax to check what our Dockerfile says
// (instructions, line continuations, comments, flags, exec vs shell form, stages, ARG defaults in
// FROM). It throws on anything it does not understand, so a construct it would misread (a heredoc,
// a different escape character) fails the test instead of passing unseen.

export interface Instruction {
  keyword: string;
  /** Line number (1-based) where the instruction starts. */
  line: number;
  /** Leading `--name=value` flags (COPY --from, HEALTHCHECK --interval, …). */
  flags: Record<string, string>;
  /** The arguments after the flags, continuation lines joined with a space. */
  rest: string;
  /** The arguments as an array when written in exec (JSON) form, else null. */
  json: string[] | null;
}

export interface Stage {
  name: string | null;
  /** The base image with ARG defaults substituted. */
  from: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM (usable in FROM lines). */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

const KEYWORDS = new Set([
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL',
  'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);

/** Joins continuation lines and drops comments, returning each logical line with its start line. */
function logicalLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let current: { line: number; parts: string[] } | null = null;
  text.split(/\r?\n/).forEach((raw, index) => {
    const trimmed = raw.trim();
    if (/^#\s*escape\s*=/i.test(trimmed) && out.length === 0 && current === null) {
      throw new Error(`line ${index + 1}: escape directive not supported by this reader`);
    }
    // Comment lines are removed even inside a continuation, as Docker does.
    if (trimmed.startsWith('#')) return;
    if (current === null && trimmed === '') return;
    const continued = /\\\s*$/.test(raw);
    const part = continued ? raw.replace(/\\\s*$/, '') : raw;
    if (current === null) current = { line: index + 1, parts: [] };
    current.parts.push(part.trim());
    if (!continued) {
      out.push({ line: current.line, text: current.parts.filter((p) => p !== '').join(' ') });
      current = null;
    }
  });
  if (current !== null) throw new Error('Dockerfile ends inside a line continuation');
  return out;
}

function parseInstruction(line: number, text: string): Instruction {
  const match = /^(\S+)\s*(.*)$/.exec(text);
  if (!match) throw new Error(`line ${line}: cannot read ${JSON.stringify(text)}`);
  const keyword = (match[1] ?? '').toUpperCase();
  if (!KEYWORDS.has(keyword)) throw new Error(`line ${line}: unknown instruction ${match[1]}`);
  let rest = match[2] ?? '';
  if (/<<-?\s*["']?[A-Za-z_]/.test(rest) && (keyword === 'RUN' || keyword === 'COPY')) {
    throw new Error(`line ${line}: heredocs are not supported by this reader`);
  }
  const flags: Record<string, string> = {};
  for (;;) {
    const flag = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest);
    if (!flag || keyword === 'RUN' && !['mount', 'network', 'security'].includes(flag[1] ?? '')) break;
    flags[flag[1] ?? ''] = flag[2] ?? 'true';
    rest = rest.slice(flag[0].length);
  }
  return { keyword, line, flags, rest, json: execForm(rest) };
}

function execForm(rest: string): string[] | null {
  if (!rest.startsWith('[')) return null;
  try {
    const value: unknown = JSON.parse(rest);
    return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : null;
  } catch {
    return null; // Docker treats malformed JSON as shell form too
  }
}

function substitute(value: string, args: Record<string, string>, line: number): string {
  return value.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => {
    const v = args[name];
    if (v === undefined) throw new Error(`line ${line}: FROM uses ${name}, which has no ARG default`);
    return v;
  });
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const { line, text: logical } of logicalLines(text)) {
    const instruction = parseInstruction(line, logical);
    if (instruction.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.rest);
      if (!m) throw new Error(`line ${line}: cannot read FROM ${instruction.rest}`);
      stages.push({ name: m[2] ?? null, from: substitute(m[1] ?? '', globalArgs, line), instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) {
      if (instruction.keyword !== 'ARG') throw new Error(`line ${line}: only ARG may come before the first FROM`);
      const [name = '', value = ''] = instruction.rest.split('=', 2);
      globalArgs[name.trim()] = value.trim();
      continue;
    }
    stage.instructions.push(instruction);
  }
  return { globalArgs, stages };
}

/** The instructions of one kind in a stage. */
export function all(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

/** Splits the source/destination arguments of COPY/ADD (exec or shell form). */
export function copyPaths(instruction: Instruction): { sources: string[]; dest: string } {
  const parts = instruction.json ?? instruction.rest.split(/\s+/).filter((p) => p !== '');
  if (parts.length < 2) throw new Error(`line ${instruction.line}: COPY needs a source and a destination`);
  return { sources: parts.slice(0, -1), dest: parts.at(-1) ?? '' };
}

/** Name/value pairs of ENV, ARG and LABEL (`A=b C=d` and the legacy `A b` form). */
export function assignments(instruction: Instruction): Array<{ name: string; value: string | null }> {
  const rest = instruction.rest;
  if (instruction.keyword !== 'ARG' && !rest.includes('=')) {
    const [name = '', ...value] = rest.split(/\s+/);
    return [{ name, value: value.join(' ') }];
  }
  const out: Array<{ name: string; value: string | null }> = [];
  for (const m of rest.matchAll(/([A-Za-z_][A-Za-z0-9_.-]*)(?:=("(?:[^"\\]|\\.)*"|'[^']*'|\S*))?/g)) {
    out.push({ name: m[1] ?? '', value: m[2] === undefined ? null : m[2].replace(/^["']|["']$/g, '') });
  }
  return out;
}
