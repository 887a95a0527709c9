// isWellFormedHost (http.ts) remembers the last Host it found well formed, since nearly every
// request repeats it: the answer for any host must not depend on what was asked before.
import t from 'tap';
import { isWellFormedHost } from '../../src/http.js';

t.test('the same answer for every Host, whatever came before it', async (t) => {
  const cases: Array<[string, boolean]> = [
    ['app.example.com', true],
    ['app.example.com:8443', true],
    ['[::1]:8080', true],
    ['app.example.com:65536', false],
    ['app.example.com/evil', false],
    ['user@app.example.com', false],
    ['', false],
    ['a'.repeat(262), false],
    ['app.example.com.', true],
  ];
  for (let round = 0; round < 3; round++) {
    for (const [host, expected] of round === 1 ? [...cases].reverse() : cases) {
      t.equal(isWellFormedHost(host), expected, `${JSON.stringify(host.slice(0, 30))}, round ${round + 1}`);
      // Asked again right after another answer: still the same.
      t.equal(isWellFormedHost(host), expected);
    }
  }
});
