// Finding the rules for a path without reading every rule (rules.ts). A rule for `/a/b` applies to
// `/a/b` and to everything under `/a/b/`, so the rules that can match a path are those whose prefix
// is the path itself or the path cut before one of its slashes: one map lookup per slash finds them,
// however many rules there are. Rules strictly inside a path are a range of the prefixes in sorted
// order. Every answer is the one reading the list in order gives (test/unit/rule-index.test.ts
// compares both on random tables); small tables are still read in order, which is cheaper there.

/** What the index needs of an entry: its segment-boundary prefix (`/a/b`, '' for `/`) and its methods. */
export interface PrefixEntry {
  readonly base: string;
  readonly baseWithSlash: string;
  readonly methods: ReadonlySet<string> | null;
}

export interface PrefixLookup<E extends PrefixEntry> {
  /** The first entry in order whose prefix matches `path` and whose methods include `method`. */
  first(path: string, method: string): E | undefined;
  /** Every entry whose prefix matches `path`, whatever its methods, in order. */
  matching(path: string): E[];
  /** The entries (for `method`) whose prefixes lie strictly inside `path`, in order. */
  within(path: string, method: string): E[];
}

/** Up to this many entries a lookup reads them in order (measured: bench/href-match.mjs). */
const READ_IN_ORDER_UP_TO = 16;

const allows = (entry: PrefixEntry, method: string) => entry.methods === null || entry.methods.has(method);
const matches = (entry: PrefixEntry, path: string) => path === entry.base || path.startsWith(entry.baseWithSlash);
/** `path` with one trailing slash: what a prefix strictly inside it starts with. */
const insideOf = (path: string) => (path.endsWith('/') ? path : `${path}/`);
const isWithin = (entry: PrefixEntry, inside: string) => entry.baseWithSlash !== inside && entry.baseWithSlash.startsWith(inside);

export function createPrefixLookup<E extends PrefixEntry>(entries: readonly E[], options: { readInOrderUpTo?: number } = {}): PrefixLookup<E> {
  return entries.length <= (options.readInOrderUpTo ?? READ_IN_ORDER_UP_TO) ? readInOrder(entries) : indexed(entries);
}

function readInOrder<E extends PrefixEntry>(entries: readonly E[]): PrefixLookup<E> {
  return {
    first(path, method) {
      for (const entry of entries) if (allows(entry, method) && matches(entry, path)) return entry;
      return undefined;
    },
    matching(path) {
      const found: E[] = [];
      for (const entry of entries) if (matches(entry, path)) found.push(entry);
      return found;
    },
    within(path, method) {
      const inside = insideOf(path);
      const found: E[] = [];
      for (const entry of entries) if (allows(entry, method) && isWithin(entry, inside)) found.push(entry);
      return found;
    },
  };
}

interface Ranked<E> {
  readonly entry: E;
  /** Its place in the list: first match wins. */
  readonly order: number;
}

function indexed<E extends PrefixEntry>(entries: readonly E[]): PrefixLookup<E> {
  const ranked = entries.map((entry, order): Ranked<E> => ({ entry, order }));
  const byBase = new Map<string, Ranked<E>[]>();
  for (const item of ranked) {
    const list = byBase.get(item.entry.base);
    if (list === undefined) byBase.set(item.entry.base, [item]);
    else list.push(item);
  }
  const bySortedPrefix = [...ranked].sort((a, b) => (a.entry.baseWithSlash < b.entry.baseWithSlash ? -1 : a.entry.baseWithSlash > b.entry.baseWithSlash ? 1 : 0));
  // Only cuts as long as some prefix are looked up: a path of thousands of slashes costs a map
  // lookup per slash within the longest prefix, not a string hashed per slash of the whole path.
  const prefixLengths = new Set(entries.map((entry) => entry.base.length));
  const longest = Math.max(...prefixLengths);
  /** The lists of every prefix matching `path`: the path itself, then the path cut before each slash. */
  const candidates = (path: string, visit: (list: readonly Ranked<E>[]) => void) => {
    const exact = path.length <= longest ? byBase.get(path) : undefined;
    if (exact !== undefined) visit(exact);
    for (let slash = path.indexOf('/'); slash !== -1 && slash <= longest; slash = path.indexOf('/', slash + 1)) {
      if (!prefixLengths.has(slash)) continue;
      const list = byBase.get(path.slice(0, slash));
      if (list !== undefined) visit(list);
    }
  };
  const inOrder = (items: Ranked<E>[]) => items.sort((a, b) => a.order - b.order).map((item) => item.entry);
  return {
    first(path, method) {
      let best: Ranked<E> | undefined;
      candidates(path, (list) => {
        for (const item of list) {
          if (best !== undefined && item.order >= best.order) return;
          if (allows(item.entry, method)) {
            best = item;
            return;
          }
        }
      });
      return best?.entry;
    },
    matching(path) {
      const found: Ranked<E>[] = [];
      candidates(path, (list) => found.push(...list));
      return inOrder(found);
    },
    within(path, method) {
      const inside = insideOf(path);
      const found: Ranked<E>[] = [];
      for (let i = lowerBound(bySortedPrefix, inside); i < bySortedPrefix.length; i++) {
        const item = bySortedPrefix[i] as Ranked<E>;
        if (!item.entry.baseWithSlash.startsWith(inside)) break;
        if (allows(item.entry, method) && isWithin(item.entry, inside)) found.push(item);
      }
      return inOrder(found);
    },
  };
}

/** The first place in `sorted` whose prefix is not below `key`. */
function lowerBound<E extends PrefixEntry>(sorted: readonly Ranked<E>[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((sorted[middle] as Ranked<E>).entry.baseWithSlash < key) low = middle + 1;
    else high = middle;
  }
  return low;
}
