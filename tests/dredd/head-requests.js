// Preloaded into Dredd by scripts/dredd.sh (node --require). Not a hook: a
// fix for a Dredd 14 bug (apiaryio/dredd#2280) that makes every HEAD
// transaction an error. Dredd always hands its HTTP library ("request") a
// body, an empty Buffer when the blueprint has none, and that library throws
// "HTTP HEAD requests MUST NOT include a request body" for any body at all.
// Here the library's entry point drops an empty body from HEAD requests and
// leaves everything else as it was.
const path = require('path');
const id = require.resolve('request', { paths: [path.join(__dirname, 'node_modules/dredd')] });
const request = require(id);

function isEmpty(body) {
  return body === undefined || body === null || body.length === 0;
}

function patched(uri, options, callback) {
  for (const params of [uri, options]) {
    if (params && typeof params === 'object' && String(params.method).toUpperCase() === 'HEAD' && isEmpty(params.body)) {
      delete params.body;
    }
  }
  return request(uri, options, callback);
}
Object.assign(patched, request);
require.cache[id].exports = patched;
