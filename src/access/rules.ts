// Per-path access rules (GATEWAY_ACCESS_RULES): an ordered list, first match wins, no match means
// `authenticated`. GATEWAY_PUBLIC_PATHS entries act as `public` rules placed first. The same
// decision serves the proxy path, WebSocket upgrades and forward-auth (/verify), so a rule
// cannot be enforced on one way in and forgotten on another.
//
// A request may be read more than one way, and then every reading must allow it (SPEC 4): the path
// as sent, the path a Servlet container maps (path parameters removed, paths.ts), the path a PHP
// front controller routes (`/index.php/admin` is `/admin`; CodeIgniter's `/?/admin` too), the path
// a format-suffix router routes (Rails and older Spring MVC: `/admin.json` is `/admin`), the path
// without case for the rules that refuse someone (Express and IIS: `/ADMIN` is `/admin`), and, when
// forward-auth is not told the method, every method the rules could be matching; a POST that names
// another method (`?_method=DELETE`, method-override.ts) is read as that method too. A WebDAV COPY or
// MOVE also writes to its Destination, and COPY, MOVE, DELETE and LOCK act on everything under
// their paths, so the rules there apply as well. The rules that apply are then combined into one that
// allows only what each of them allows.
import { createRequire } from 'node:module';
import { normaliseRequestUrl, otherReadings, prefixBase, type PathReading } from './paths.js';
import { createPrefixLookup, type PrefixLookup } from './rule-index.js';

export type AccessPolicy = 'public' | 'authenticated' | 'deny' | 'groups';

/** One validated rule as the operator wrote it (config keeps these). */
export interface AccessRuleSpec {
  path: string;
  methods: string[] | null;
  policy: AccessPolicy;
  /** For `groups`: any one of them grants access. */
  groups: string[];
  /** Only these groups (exact names, or `prefix*`) are sent upstream; null: all of them. */
  forwardGroups: string[] | null;
  /** `"mfa": true`: a session must have passed a second factor (step-up); absent: false. */
  mfa?: boolean;
}

/** A compiled rule, matched per request. */
export interface AccessRule {
  /** 1-based position in the rules file; 0 for GATEWAY_PUBLIC_PATHS entries and the default. */
  readonly index: number;
  readonly policy: AccessPolicy;
  /** For `groups`: any one of them grants access. */
  readonly groups: readonly string[];
  /** For a rule standing for several: further group lists, one group of each is needed too. */
  readonly alsoGroups: ReadonlyArray<readonly string[]>;
  /** Narrows the group list sent upstream; null: send every group. */
  readonly filterGroups: ((groups: readonly string[]) => string[]) | null;
  /** Names the rule, or the set of rules it stands for, in caches of what is forwarded under it. */
  readonly key: string;
  /** A second factor is needed (step-up): a password-only session is sent through it first. */
  readonly mfa: boolean;
}

export type AccessVerdict = 'allow' | 'login' | 'forbidden';

/** Other paths a request acts on or may be routed by, and other methods an app may take it for. */
export interface OtherReadings {
  /** Where a WebDAV COPY/MOVE writes (destination.ts): its rules, and the default, apply. */
  destination?: string | undefined;
  /** The path a query-string router reads (paths.ts queryRoutedPath): the rules matching it apply. */
  routed?: string | undefined;
  /** Methods a POST asks the app to take it for (method-override.ts): the rules for each apply. */
  methods?: readonly string[] | undefined;
  /** The request reads everything under its path (destination.ts `readsWholeTree`: PROPFIND Depth infinity): the rules inside apply. */
  wholeTree?: boolean | undefined;
  /** Paths a trusted proxy's X-Original-URL / X-Rewrite-URL name (rewritten-url.ts): the app may route by them, so their rules, and the default, apply. */
  rewritten?: readonly string[] | undefined;
  /** Other paths the app acts on (a WebDAV body's hrefs, a Destination without a trusted base path): their rules, and the default, apply. */
  named?: readonly string[] | undefined;
}

export interface AccessRules {
  /**
   * The first rule whose prefix and methods match (the `authenticated` default otherwise), for the
   * path as sent and for it without path parameters: when those differ, a rule that allows only
   * what both allow. `method` null: not known (forward-auth without a method header); then every
   * rule some method would reach applies, so a method-scoped rule cannot be walked around.
   * `also.destination`: a second path the request writes to (WebDAV COPY/MOVE, destination.ts);
   * the rule then allows only what the rules at both paths allow. `also.routed`: the path a
   * query-string router reads; the rules matching it (not the default) apply too. `also.methods`:
   * methods the app may take the request for; every reading is asked with each of them. COPY, MOVE,
   * DELETE and LOCK act on the whole tree under a path, so the rules of paths inside it (and inside
   * the Destination) count too, and so do they for `also.wholeTree` (a PROPFIND of Depth infinity
   * reads everything under the path). `also.rewritten`: the paths a trusted proxy's X-Original-URL
   * names, and `also.named`, the other paths the app acts on, read like the request's own. A
   * REPORT reads inside the collection of its path too. Every path is also read without case, for
   * the `deny` and `groups` rules only. `readings`: paths.ts `otherReadings(path)`, when the
   * caller has it.
   */
  match(path: string, method: string | null, also?: OtherReadings, readings?: readonly PathReading[]): AccessRule;
  /** Whether any rule names methods (so an unknown method can change a decision). */
  readonly methodScoped: boolean;
}

const ALLOWED_KEYS = new Set(['path', 'methods', 'policy', 'forward_groups', 'mfa']);
const METHOD = /^[A-Z][A-Z0-9_-]*$/;
const RULE_PATH = /^(?:[A-Za-z0-9\-._~/]|%[89A-Fa-f][0-9A-Fa-f])+$/;
const MAX_RULES = 1_000;

/** What a path no rule matches gets: a session is required. */
export const DEFAULT_RULE: AccessRule = Object.freeze({ index: 0, policy: 'authenticated', groups: [], alsoGroups: [], filterGroups: null, key: 'default', mfa: false });
const PUBLIC_PATHS_RULE: AccessRule = Object.freeze({ index: 0, policy: 'public', groups: [], alsoGroups: [], filterGroups: null, key: 'public', mfa: false });
/** Combined rules are few (bounded by the rule table's shape); the cap only guards the memory. */
const MAX_COMBINED_RULES = 10_000;

/** What a request may do under a rule, given the session's identity (null: anonymous). */
export function decideAccess(rule: AccessRule, identity: { groups: readonly string[] } | null): AccessVerdict {
  switch (rule.policy) {
    case 'public':
      return 'allow';
    case 'deny':
      return 'forbidden';
    case 'authenticated':
      return identity ? 'allow' : 'login';
    case 'groups':
      if (!identity) return 'login';
      return hasOneOf(identity.groups, rule.groups) && rule.alsoGroups.every((groups) => hasOneOf(identity.groups, groups)) ? 'allow' : 'forbidden';
  }
}

/**
 * What is forwarded for a session under a rule: the identity with its groups narrowed when the
 * rule says so, and a cache key for anything derived from it (the signed token), per session and rule.
 */
export function forwardedIdentity<R extends { groups: readonly string[] }>(rule: AccessRule | undefined, session: { idHash: string; record: R }): { idHash: string; record: R } {
  if (!rule?.filterGroups) return session;
  return { idHash: `${session.idHash}#${rule.key}`, record: { ...session.record, groups: rule.filterGroups(session.record.groups) } };
}

/** Compiles rules once at start-up; per request only string prefix checks remain. */
export function createAccessRules(publicPaths: readonly string[], specs: readonly AccessRuleSpec[]): AccessRules {
  const compiled = [
    ...publicPaths.map((path) => compileEntry(path, null, PUBLIC_PATHS_RULE)),
    ...specs.map((spec, i) => compileEntry(spec.path, spec.methods, compileRule(spec, i + 1))),
  ];
  if (compiled.length === 0) return { match: () => DEFAULT_RULE, methodScoped: false };
  const methodScoped = compiled.some((entry) => entry.methods !== null);
  const combine = ruleCombiner();
  // Large tables are looked up by prefix, not read whole per reading (rule-index.ts).
  const lookup = createPrefixLookup(compiled);
  const firstMatch = (path: string, method: string): AccessRule => lookup.first(path, method)?.rule ?? DEFAULT_RULE;
  // Without method-scoped rules every method gets the same rule ('' is no method's name).
  const rulesFor = (path: string, method: string | null): AccessRule[] =>
    method === null && methodScoped ? rulesForAnyMethod(lookup, path) : [firstMatch(path, method ?? '')];
  // Express (by default) and IIS route `/ADMIN` as `/admin`: the path is also read without case,
  // against the rules' paths without case. Only a `deny` or `groups` rule found so counts (a public
  // path stays case-sensitive, SPEC 4; the default adds nothing). Nothing to compare when neither
  // the path nor any rule has an upper-case letter (most requests: `toLowerCase` returns the same string).
  const folded = compiled.map((entry) => ({ ...entry, base: entry.base.toLowerCase(), baseWithSlash: entry.baseWithSlash.toLowerCase() }));
  const rulesHaveCase = folded.some((entry, i) => entry.base !== compiled[i]?.base);
  const foldedLookup = createPrefixLookup(folded);
  /** The rule the path without case finds that could refuse someone, or null. */
  const caselessRule = (path: string, method: string): AccessRule | null => {
    const lower = path.toLowerCase();
    if (lower === path && !rulesHaveCase) return null;
    const rule = foldedLookup.first(lower, method)?.rule ?? DEFAULT_RULE;
    return rule.policy === 'deny' || rule.policy === 'groups' ? rule : null;
  };
  const caselessRules = (path: string, method: string | null): AccessRule[] => {
    if (method !== null || !methodScoped) {
      const rule = caselessRule(path, method ?? '');
      return rule === null ? [] : [rule];
    }
    return rulesForAnyMethod(foldedLookup, path.toLowerCase()).filter((rule) => rule.policy === 'deny' || rule.policy === 'groups');
  };
  /** Whether no reading changes `first`: each finds the same rule, or (adding only rules written for it) none. */
  const readingsAgree = (path: string, readings: readonly PathReading[], first: AccessRule, method: string): boolean => {
    const caseless = caselessRule(path, method);
    if (caseless !== null && caseless !== first) return false;
    for (let i = 0; i < readings.length; i++) {
      const reading = readings[i] as PathReading;
      const rule = firstMatch(reading.path, method);
      if (rule !== first && !(reading.explicitOnly && rule === DEFAULT_RULE)) return false;
      const caselessReading = caselessRule(reading.path, method);
      if (caselessReading !== null && caselessReading !== first) return false;
    }
    return true;
  };
  return {
    methodScoped,
    match(path, method, also, readings = otherReadings(path)) {
      const subtree = method !== null && (SUBTREE_METHODS.has(method) || method === 'REPORT');
      const destination = also?.destination;
      // The common case: a known method that acts on one path alone, whose other readings (a static
      // file's `/static/app` for `/static/app.js`) find no other rule; no allocation.
      if (also === undefined && !subtree && (method !== null || !methodScoped)) {
        const first = firstMatch(path, method ?? '');
        if (readingsAgree(path, readings, first, method ?? '')) return first;
      }
      const rules: AccessRule[] = [];
      // An override is asked as a method of its own (a POST asking to be a DELETE is a DELETE to the app).
      const methods = also?.methods === undefined || method === null ? [method] : [method, ...also.methods];
      // A read of the whole tree (PROPFIND Depth infinity) reaches inside the path as COPY or DELETE does.
      const wholeTree = also?.wholeTree === true;
      const ask = (reading: string, explicitOnly: boolean) => {
        for (const asked of methods) {
          for (const rule of rulesFor(reading, asked)) if (!explicitOnly || rule !== DEFAULT_RULE) rules.push(rule);
          rules.push(...caselessRules(reading, asked));
          if (asked !== null && (wholeTree || SUBTREE_METHODS.has(asked))) rules.push(...rulesWithin(lookup, reading, asked));
        }
      };
      for (const target of destination === undefined ? [path] : [path, destination]) {
        ask(target, false);
        for (const reading of target === path ? readings : otherReadings(target)) ask(reading.path, reading.explicitOnly);
      }
      // A REPORT runs on the collection of its path, which may be the folder the path is in
      // (collectionOf); so does a POST that names one (an override the app honours).
      if (methods.includes('REPORT')) {
        rules.push(...rulesWithin(lookup, collectionOf(path), 'REPORT'));
        for (const reading of readings) rules.push(...rulesWithin(lookup, collectionOf(reading.path), 'REPORT'));
      }
      if (also?.routed !== undefined) ask(also.routed, true);
      for (const targets of [also?.rewritten, also?.named]) {
        for (const target of targets ?? []) {
          ask(target, false);
          for (const reading of otherReadings(target)) ask(reading.path, reading.explicitOnly);
        }
      }
      return combine(rules);
    },
  };
}

/**
 * Methods that act on everything under their path: a collection's members are copied, moved,
 * deleted or locked with it (RFC 4918 §9.6, §9.8, §9.9, §9.10: a LOCK is Depth infinity unless it
 * says 0). A rule for a path inside must allow them too, or a user could DELETE the parent of a
 * folder a rule keeps from them, COPY it somewhere readable, or LOCK its owners out of it. BIND,
 * REBIND and UNBIND (RFC 5842) add or remove a member of their collection named in the body (a
 * segment), and BIND and REBIND bind a resource (a whole tree) their body names there.
 */
const SUBTREE_METHODS: ReadonlySet<string> = new Set(['COPY', 'MOVE', 'DELETE', 'LOCK', 'BIND', 'REBIND', 'UNBIND']);

/**
 * The collection a REPORT runs on: its path when that ends in `/`, else the folder the path is in
 * (Radicale runs a `sync-collection` REPORT sent to an event on the event's calendar, and answers
 * with every event in it). An event named with a slash added (`lunch.ics/`, which Radicale reads as
 * the event) is read without its extension too (paths.ts), and that reading runs on its folder.
 */
function collectionOf(path: string): string {
  return path.endsWith('/') ? path : path.slice(0, path.lastIndexOf('/') + 1);
}

/** The rules (for `method`) of the paths strictly inside `path`: what a subtree method reaches too. */
function rulesWithin(lookup: PrefixLookup<CompiledEntry>, path: string, method: string): AccessRule[] {
  const entries = lookup.within(path, method);
  return entries.length === 0 ? [] : entries.map((entry) => entry.rule);
}

/**
 * Every rule that is the first match for some method at `path`: the rules in order, each kept if
 * it names a method no earlier kept rule did, up to the first one for all methods (or the default,
 * which the methods no rule names reach).
 */
function rulesForAnyMethod(lookup: PrefixLookup<CompiledEntry>, path: string): AccessRule[] {
  const rules: AccessRule[] = [];
  const named = new Set<string>();
  for (const entry of lookup.matching(path)) {
    if (entry.methods === null) {
      rules.push(entry.rule);
      return rules;
    }
    const before = named.size;
    for (const method of entry.methods) named.add(method);
    if (named.size > before) rules.push(entry.rule);
  }
  rules.push(DEFAULT_RULE);
  return rules;
}

/**
 * One rule that allows only what each of `rules` allows: a `deny` among them wins; `public` ones
 * add nothing; otherwise a session is needed, with one group of each `groups` rule, and only the
 * groups every narrowing rule lets through are sent. Memoised: the same sets recur.
 */
function ruleCombiner(): (rules: readonly AccessRule[]) => AccessRule {
  const memo = new Map<string, AccessRule>();
  return (rules) => {
    const distinct = [...new Set(rules)];
    if (distinct.length === 1) return distinct[0] as AccessRule;
    const key = distinct.map((rule) => rule.key).sort().join('+');
    let combined = memo.get(key);
    if (combined === undefined) {
      combined = combineRules(distinct, key);
      if (memo.size < MAX_COMBINED_RULES) memo.set(key, combined);
    }
    return combined;
  };
}

function combineRules(rules: readonly AccessRule[], key: string): AccessRule {
  const deny = rules.find((rule) => rule.policy === 'deny');
  if (deny) return deny;
  const needed = rules.filter((rule) => rule.policy !== 'public');
  if (needed.length === 0) return rules[0] as AccessRule;
  if (needed.length === 1) return needed[0] as AccessRule;
  const groupLists = needed.filter((rule) => rule.policy === 'groups').flatMap((rule) => [rule.groups, ...rule.alsoGroups]);
  const primary = needed.find((rule) => rule.policy === 'groups') ?? (needed[0] as AccessRule);
  const filters = needed.flatMap((rule) => (rule.filterGroups ? [rule.filterGroups] : []));
  return Object.freeze({
    index: primary.index,
    policy: primary.policy,
    groups: groupLists[0] ?? [],
    alsoGroups: Object.freeze(groupLists.slice(1)),
    filterGroups: filters.length === 0 ? null : (groups: readonly string[]) => filters.reduce<string[]>((kept, filter) => filter(kept), [...groups]),
    key,
    // Every reading must allow: if one of them asks for a second factor, the request needs it.
    mfa: needed.some((rule) => rule.mfa),
  });
}

function hasOneOf(held: readonly string[], wanted: readonly string[]): boolean {
  return wanted.some((group) => held.includes(group));
}

interface CompiledEntry {
  base: string;
  baseWithSlash: string;
  methods: Set<string> | null;
  rule: AccessRule;
}

function compileEntry(path: string, methods: string[] | null, rule: AccessRule): CompiledEntry {
  // Segment-boundary prefixes, as for GATEWAY_PUBLIC_PATHS: `/admin` matches `/admin/x`, not `/administrator`.
  const base = prefixBase(path);
  // HEAD is GET without a body: a rule for GET must not be bypassed by asking HEAD.
  const methodSet = methods === null ? null : withHead(methods);
  return { base, baseWithSlash: `${base}/`, methods: methodSet, rule };
}

function compileRule(spec: AccessRuleSpec, index: number): AccessRule {
  return Object.freeze({ index, policy: spec.policy, groups: Object.freeze([...spec.groups]), alsoGroups: [], filterGroups: spec.forwardGroups ? groupFilter(spec.forwardGroups) : null, key: String(index), mfa: spec.mfa === true });
}

function groupFilter(patterns: readonly string[]): (groups: readonly string[]) => string[] {
  const exact = new Set(patterns.filter((p) => !p.endsWith('*')));
  const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (groups) => groups.filter((g) => exact.has(g) || prefixes.some((prefix) => g.startsWith(prefix)));
}

/**
 * Rules that can never match because an earlier entry (a GATEWAY_PUBLIC_PATHS prefix, or a rule
 * with a shorter or equal prefix covering all of their methods) always matches first. Each is
 * almost certainly an ordering mistake that silently opens or closes a path, so it is reported.
 */
export function findShadowedRules(publicPaths: readonly string[], rules: readonly AccessRuleSpec[]): string[] {
  const earlier: Array<{ base: string; methods: Set<string> | null; name: string }> = publicPaths.map((path) => ({ base: prefixBase(path), methods: null, name: `GATEWAY_PUBLIC_PATHS entry ${path}` }));
  const problems: string[] = [];
  rules.forEach((rule, i) => {
    const base = prefixBase(rule.path);
    const methods = rule.methods === null ? null : withHead(rule.methods);
    const shadow = earlier.find((e) => covers(e.base, base) && (e.methods === null || (methods !== null && [...methods].every((m) => e.methods?.has(m)))));
    if (shadow) problems.push(`rule #${i + 1} (${rule.path}) can never match: ${shadow.name} comes first and matches everything it does`);
    earlier.push({ base, methods, name: `rule #${i + 1} (${rule.path})` });
  });
  return problems;
}

/** Whether every path under `inner` is also under `outer` (segment boundaries). */
function covers(outer: string, inner: string): boolean {
  return outer === '' || inner === outer || inner.startsWith(`${outer}/`);
}

function withHead(methods: readonly string[]): Set<string> {
  return new Set(methods.includes('GET') ? [...methods, 'HEAD'] : methods);
}

/**
 * The YAML parser, loaded when a rules file is first read: a gateway without one (the common case)
 * does not carry its ~0.8 MiB of heap. Synchronous, because configuration is read synchronously.
 */
let parseYaml: typeof import('yaml').parse | null = null;
function yamlParser(): typeof import('yaml').parse {
  parseYaml ??= (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse;
  return parseYaml;
}

/**
 * Parses and validates a rules file (JSON or YAML; JSON is YAML, so one parser reads both).
 * Returns the rules and every problem found, each naming the rule, so a broken file is fixed in
 * one round.
 */
export function parseAccessRules(text: string): { rules: AccessRuleSpec[]; problems: string[] } {
  let document: unknown;
  try {
    document = yamlParser()(text);
  } catch (err) {
    return { rules: [], problems: [`not valid JSON or YAML (${firstLine((err as Error).message)})`] };
  }
  const list = Array.isArray(document) ? document : isObject(document) && Array.isArray(document.rules) ? document.rules : null;
  if (list === null) return { rules: [], problems: ['must be a list of rules, or an object with a `rules` list'] };
  if (list.length > MAX_RULES) return { rules: [], problems: [`has ${list.length} rules; at most ${MAX_RULES}`] };
  const rules: AccessRuleSpec[] = [];
  const problems: string[] = [];
  list.forEach((entry: unknown, i: number) => {
    const rule = parseRule(entry, (why) => problems.push(`rule #${i + 1}: ${why}`));
    if (rule) rules.push(rule);
  });
  return { rules, problems };
}

function parseRule(entry: unknown, problem: (why: string) => void): AccessRuleSpec | null {
  if (!isObject(entry)) {
    problem('must be an object with `path` and `policy`');
    return null;
  }
  const before = problemCounter(problem);
  for (const key of Object.keys(entry)) {
    if (!ALLOWED_KEYS.has(key)) before.report(`unknown key ${JSON.stringify(key)} (allowed: ${[...ALLOWED_KEYS].join(', ')})`);
  }
  const path = parsePath(entry.path, before.report);
  const methods = parseMethods(entry.methods, before.report);
  const policy = parsePolicy(entry.policy, before.report);
  const forwardGroups = entry.forward_groups === undefined ? null : parseNames(entry.forward_groups, 'forward_groups', before.report);
  let mfa = false;
  if (entry.mfa !== undefined) {
    if (typeof entry.mfa !== 'boolean') before.report('`mfa` must be true or false');
    else if (entry.mfa && policy !== null && (policy.policy === 'public' || policy.policy === 'deny')) before.report(`\`mfa\` needs a rule that signs in (authenticated or groups), not ${policy.policy}`);
    else mfa = entry.mfa;
  }
  if (before.count > 0 || path === null || policy === null) return null;
  return { path, methods, policy: policy.policy, groups: policy.groups, forwardGroups, ...(mfa ? { mfa } : {}) };
}

function parsePath(value: unknown, problem: (why: string) => void): string | null {
  if (typeof value !== 'string' || !value.startsWith('/')) {
    problem('`path` must be a string starting with /');
    return null;
  }
  if (value.includes('?') || value.includes('#')) {
    problem(`\`path\` ${JSON.stringify(value)} must not contain ? or #`);
    return null;
  }
  // `@ : ! $ & ' ( ) * + , ; =` stay percent-encoded after normalisation (RFC 3986), but most apps
  // decode them before routing: a rule on `/a@b` would miss `/a%40b` and open what it guards.
  if (!RULE_PATH.test(value)) {
    problem(`\`path\` ${JSON.stringify(value)} may hold only letters, digits, - . _ ~ / and %XX escapes of non-ASCII bytes`);
    return null;
  }
  // Requests are matched after normalisation; a rule written un-normalised would never match.
  const normalised = normaliseRequestUrl(value);
  if (!normalised.ok || normalised.path !== value) {
    problem(`\`path\` ${JSON.stringify(value)} is not a normalised path${normalised.ok ? ` (write ${JSON.stringify(normalised.path)})` : ''}`);
    return null;
  }
  return value;
}

function parseMethods(value: unknown, problem: (why: string) => void): string[] | null {
  if (value === undefined || value === null) return null;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || !list.every((m) => typeof m === 'string' && METHOD.test(m.toUpperCase()))) {
    problem('`methods` must be a non-empty list of HTTP methods like [GET, POST]');
    return null;
  }
  return list.map((m: string) => m.toUpperCase());
}

function parsePolicy(value: unknown, problem: (why: string) => void): { policy: AccessPolicy; groups: string[] } | null {
  if (value === 'public' || value === 'authenticated' || value === 'deny') return { policy: value, groups: [] };
  if (isObject(value) && Object.keys(value).length === 1 && value.groups !== undefined) {
    const groups = parseNames(value.groups, 'policy.groups', problem);
    // Patterns are for narrowing what is sent (forward_groups), never for granting access.
    if (groups?.some((g) => g.includes('*'))) {
      problem('`policy.groups` names groups exactly; `*` is not a pattern here');
      return null;
    }
    return groups ? { policy: 'groups', groups } : null;
  }
  problem('`policy` must be public, authenticated, deny or { groups: [...] }');
  return null;
}

function parseNames(value: unknown, key: string, problem: (why: string) => void): string[] | null {
  if (!Array.isArray(value) || value.length === 0 || !value.every((g) => typeof g === 'string' && g.trim() !== '')) {
    problem(`\`${key}\` must be a non-empty list of group names`);
    return null;
  }
  return value.map((g: string) => g.trim());
}

function problemCounter(problem: (why: string) => void): { count: number; report: (why: string) => void } {
  const counter = {
    count: 0,
    report: (why: string) => {
      counter.count += 1;
      problem(why);
    },
  };
  return counter;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? text;
}
