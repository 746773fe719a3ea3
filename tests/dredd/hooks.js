// Dredd hooks for apiary.apib. The blueprint is the test: these hooks only
// carry over the ids that this run creates, nothing else.
//
// Every example of apiary.apib was captured from a live host
// (scripts/gen-apiary.py), in document order, so the ids in its paths and
// bodies are those of that run. Dredd replays the same requests in the same
// order against a fresh host, which creates the same things under new ids.
// After each transaction the documented response body is walked side by side
// with the real one: where the document has an id and the real answer has
// another at the same place, that pair is remembered (the first pair wins:
// an id is first shown by the response that created it). Before each
// transaction every remembered id is replaced in the request path and body.
//
// Auth needs no hook: the dev tokens (`<user-uuid>:<project-uuid>[:admin]`)
// are part of each documented request, and their UUIDs are fixed ones that
// both runs share.
const hooks = require('hooks');

// Ids as the API writes them (lowercase, hyphenated UUIDs).
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

// documented id -> id of this run
const ids = new Map();

function parseJson(text) {
  if (typeof text !== 'string' || text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (_) {
    return undefined;
  }
}

// Pairs the ids found at the same places of the documented and the real value.
function learn(documented, real) {
  if (typeof documented === 'string' && typeof real === 'string') {
    const a = documented.match(UUID) || [];
    const b = real.match(UUID) || [];
    if (a.length !== b.length) return;
    a.forEach((id, i) => {
      if (id !== b[i] && !ids.has(id)) {
        ids.set(id, b[i]);
        hooks.log(`id ${id} of the blueprint is ${b[i]} in this run`);
      }
    });
  } else if (Array.isArray(documented) && Array.isArray(real)) {
    documented.forEach((d, i) => i < real.length && learn(d, real[i]));
  } else if (documented && real && typeof documented === 'object' && typeof real === 'object') {
    Object.keys(documented).forEach((k) => k in real && learn(documented[k], real[k]));
  }
}

function substitute(text) {
  return typeof text === 'string' ? text.replace(UUID, (id) => ids.get(id) || id) : text;
}

hooks.beforeEach((transaction) => {
  transaction.fullPath = substitute(transaction.fullPath);
  transaction.request.uri = substitute(transaction.request.uri);
  transaction.request.body = substitute(transaction.request.body);
});

hooks.afterEach((transaction) => {
  const documented = parseJson(transaction.expected && transaction.expected.body);
  const real = parseJson(transaction.real && transaction.real.body);
  if (documented !== undefined && real !== undefined) learn(documented, real);
});
