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
//
// Besides Dredd's own check (the answer has the documented status, headers
// and body structure), every real answer is validated against the JSON
// Schemas the host serves (`GET /schemas`, fetched once before the run):
// each object whose `_links.describedby` names `/schemas/<x>` must match
// schema <x>, an error body must match `/schemas/error`, a launch answer's
// entries `/schemas/server_launch_result`, and a tag list must be tags. A
// mismatch fails the transaction.
const http = require('http');
const Ajv2020 = require('ajv/dist/2020');
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

// Every served schema, compiled together (they refer to each other by `$id`).
// Formats stay annotations, as in the host's own validator.
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: false });
let loadError = null;

function getJson(base, path) {
  return new Promise((resolve, reject) => {
    http
      .get(base + path, { headers: { Accept: 'application/json' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`GET ${path}: ${res.statusCode} ${body}`));
          try {
            resolve(JSON.parse(body));
          } catch (e) {
            reject(new Error(`GET ${path}: not JSON (${e.message})`));
          }
        });
      })
      .on('error', reject);
  });
}

hooks.beforeAll((transactions, done) => {
  const t = transactions[0];
  const base = `${t.protocol}//${t.host}:${t.port}`;
  getJson(base, '/schemas')
    .then((index) => Promise.all(index.map((entry) => getJson(base, entry._links['rel/schema'].href))))
    .then((schemas) => {
      schemas.forEach((schema) => ajv.addSchema(schema));
      // Compile each now, so a schema that does not compile stops the run.
      schemas.forEach((schema) => ajv.getSchema(schema.$id));
      hooks.log(`validating answers against ${schemas.length} schemas`);
      done();
    })
    .catch((e) => {
      // Every transaction then fails with this reason.
      loadError = `the schemas could not be loaded from the host: ${e.message}`;
      hooks.log(loadError);
      done();
    });
});

// Objects that name their schema, with their JSON pointer.
function described(value, at, out) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => described(v, `${at}/${i}`, out));
  } else if (value && typeof value === 'object') {
    const href = value._links && value._links.describedby && value._links.describedby.href;
    if (typeof href === 'string' && href.startsWith('/schemas/')) out.push([href, at, value]);
    Object.keys(value)
      .filter((k) => k !== '_links')
      .forEach((k) => described(value[k], `${at}/${k}`, out));
  }
  return out;
}

function schemaProblems(transaction) {
  if (loadError) return [loadError];
  const real = transaction.real || {};
  const headers = real.headers || {};
  const type = headers['content-type'] || '';
  if (!headers['x-openstack-compute-api-version'] || !type.startsWith('application/json')) return [];
  const body = parseJson(real.body);
  if (body === undefined) return [];
  const check = (href, at, value) => {
    const validate = ajv.getSchema(href);
    if (!validate) return [`${at || '/'}: no schema ${href}`];
    return validate(value) ? [] : [`${at || '/'} does not match ${href}: ${ajv.errorsText(validate.errors)}`];
  };
  if (real.statusCode >= 400) return check('/schemas/error', '', body);
  // A launch answers a bare array of links to the new servers, whose
  // `describedby` names the schema of the server behind `self`.
  if (transaction.request.method === 'POST' && real.statusCode === 202 && Array.isArray(body)) {
    return body.flatMap((entry, i) => check('/schemas/server_launch_result', `/${i}`, entry));
  }
  const problems = described(body, '', []).flatMap(([href, at, value]) => check(href, at, value));
  const path = (transaction.request.uri || '').split('?')[0];
  if (transaction.request.method === 'GET' && path.endsWith('/tags')) {
    if (!Array.isArray(body)) problems.push('a tag list must be a bare array');
    else body.forEach((tag, i) => problems.push(...check('/schemas/tag', `/${i}`, tag)));
  }
  return problems;
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
  const problems = schemaProblems(transaction);
  if (problems.length > 0) transaction.fail = `the answer breaks its schema: ${problems.join('; ')}`;
});
