#!/usr/bin/env python3
"""Generates apiary.apib from live responses of a running vnext host, so every
example in the blueprint is what the code really returns.

Usage: scripts/gen-apiary.py BASE_URL OUT. The host must be fresh and run the
inventory that Dredd's host runs; `scripts/dredd.sh --generate` starts such a
host, runs this script against it and stops it (prefer that).

How the document is built, and why (Dredd replays it, see scripts/dredd.sh):
- The document is written top to bottom and every request is sent at the
  point where its example is written, so the order of the examples in the
  document is the order in which they were captured. Dredd runs the
  transactions in document order, so it replays exactly this scenario: a
  resource is created by an example above the ones that use it.
- An action is opened with `action(METHOD, PATH)`; PATH is what Dredd will
  request: the URI template filled with the `+ Parameters` example values of
  the resource or the action (query parameters with an example value
  included, in template order). Keep the two in step.
- `tx(...)` sends PATH with its own token and body and writes a `+ Request`
  and its `+ Response`: that pair is one Dredd transaction and must answer the
  same status when replayed. `unauth()` is the 401 transaction of the action.
- `doc(r, ...)` writes a response captured from a request that is not the
  action's own (another path or query): documentation only. It has no
  `+ Request` of its own, so Dredd (which tests the first response of each
  request) does not replay it. Only error answers and reads may be written so,
  so that skipping them leaves the state the same for the replay.
- Some documentation-only examples need a thing of their own (a locked or a
  terminated server, to show a `409`): the requests that make it are sent
  with `call` and not written, so it exists only in the generating run. Such
  a thing must not show in any replayed answer: it is made after the server
  lists (which would be longer than in the replay) and no written request
  touches it.
- Ids created in the run (types, servers, tasks) differ in the replay: the
  Dredd hooks (tests/dredd/hooks.js) learn each one from the response that
  first shows it and put the new value into later paths and bodies. Names and
  fixed UUIDs (projects, users, placements) are the same in both runs.
- A task must answer the same status in the replay, so the examples avoid
  timing: the Dredd inventory (tests/dredd/driver.toml) makes every step
  instant except `snapshot`, which takes long enough to stay RUNNING until
  the end of a run, and the server-task examples come a dozen transactions
  after the launch they depend on.
"""
import json, sys, urllib.request, urllib.error

BASE, OUT = sys.argv[1], sys.argv[2]
U = "11111111-1111-4111-8111-111111111111"
P = "22222222-2222-4222-8222-222222222222"
U2 = "33333333-3333-4333-8333-333333333333"
P2 = "44444444-4444-4444-8444-444444444444"
TOKEN = f"{U}:{P}"
ADMIN = f"{U2}:{P2}:admin"
OTHER = f"{U2}:{P2}"
# A member of a third project, with whom nothing is shared: sees only PUBLIC things.
THIRD = "88888888-8888-4888-8888-888888888888:99999999-9999-4999-8999-999999999999"

class R:
    def __init__(self, method, path, status, headers, body):
        self.method, self.path, self.status, self.headers, self.body = method, path, status, headers, body
    def json(self):
        return json.loads(self.body)
    def h(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

def call(method, path, token=TOKEN, body=None, raw=None, headers=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers or {})
    if token:
        req.add_header("X-Auth-Token", token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as resp:
            return R(method, path, resp.status, list(resp.headers.items()), resp.read().decode())
    except urllib.error.HTTPError as e:
        return R(method, path, e.code, list(e.headers.items()), e.read().decode())

def expect(r, status):
    assert r.status == status, (r.method, r.path, r.status, status, r.body)
    return r

# ----------------------------------------------------------------- rendering
def ind(text, n):
    pad = " " * n
    return "\n".join(pad + l if l.strip() else "" for l in text.split("\n"))

def body_block(obj_or_text, n=4):
    text = obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text, indent=4, ensure_ascii=False)
    return f"{' ' * n}+ Body\n\n{ind(text, n + 8)}\n\n"

def headers_block(pairs, n=4):
    if not pairs:
        return ""
    lines = "\n".join(f"{k}: {v}" for k, v in pairs)
    return f"{' ' * n}+ Headers\n\n{ind(lines, n + 8)}\n\n"

CANON = {"x-openstack-request-id": "X-OpenStack-Request-ID", "x-openstack-compute-api-version": "X-OpenStack-Compute-API-Version",
         "location": "Location", "allow": "Allow", "x-openstack-compute-server-virt-state": "X-OpenStack-Compute-Server-Virt-State",
         "x-openstack-compute-server-power-state": "X-OpenStack-Compute-Server-Power-State"}

def request(token=TOKEN, body=None, name="", accept="application/json"):
    ctype = " (application/json)" if body is not None else ""
    title = f" {name}" if name else ""
    out = f"+ Request{title}{ctype}\n\n"
    # A request with neither headers nor body is an "empty request" to API
    # Blueprint parsers: one without a token says what it accepts instead.
    hs = [("X-Auth-Token", token)] if token else ([("Accept", accept)] if body is None else [])
    out += headers_block(hs)
    if body is not None:
        out += body_block(body)
    return out

def response(r, desc=None, extra=()):
    ctype = r.h("content-type")
    out = f"+ Response {r.status}" + (f" ({ctype})" if ctype else "") + "\n\n"
    hs = [(CANON[k], r.h(k)) for k in ("x-openstack-request-id", "x-openstack-compute-api-version") if r.status < 400]
    hs += [(CANON[k], r.h(k)) for k in extra if r.h(k) is not None]
    has_body = bool(r.body) and r.method != "HEAD"
    if desc:
        # A description needs a nested section after it, or API Blueprint reads
        # it as the body: HEAD answers (no body) show their request id header.
        if not hs and not has_body:
            hs = [(CANON["x-openstack-request-id"], r.h("x-openstack-request-id"))]
        out += ind(desc.strip(), 4) + "\n\n"
    out += headers_block(hs)
    if has_body:
        out += body_block(r.json())
        if ctype == "application/schema+json":
            out += schema_block(r.json())
    return out

def schema_block(example, n=4):
    """A body that is itself a JSON Schema gets a `+ Schema` too: Dredd's
    validator reads an `application/schema+json` response as "validate against
    the given schema" and fails without one. This one asks for the example's
    top-level keys, as Dredd checks a JSON example."""
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": sorted(example)}
    return f"{' ' * n}+ Schema\n\n{ind(json.dumps(schema, indent=4), n + 8)}\n\n"

def causes_text(causes):
    return "Returned when:\n\n" + "\n".join(f"- {c}" for c in causes)

def error(r, causes):
    """An error response; `causes` lists every reason the route gives this status."""
    return response(r, causes_text(causes), extra=("allow",))

# ----------------------------------------------------------------- examples
doc_parts = []
w = doc_parts.append
# The action being written: (method, path as Dredd requests it).
CUR = [None, None]

def action(method, path):
    CUR[:] = [method, path]

def tx(status, token=TOKEN, body=None, name="", desc=None, causes=None, extra=()):
    """Sends the action's own request now and writes it with its response: one
    Dredd transaction. Returns the response."""
    method, path = CUR
    r = expect(call(method, path, token, body), status)
    w(request(token, body, name, accept=r.h("content-type") or "application/json"))
    w(response(r, causes_text(causes) if causes else desc, extra=extra + (("allow",) if causes else ())))
    return r

def unauth():
    """The action's request without a token: its 401 transaction."""
    return tx(401, token=None, name="No token", causes=["X-Auth-Token is missing or is not `<user-uuid>:<project-uuid>[:admin]`"])

def doc(r, causes=None, desc=None):
    """A response captured from another request than the action's own:
    documentation only (Dredd does not replay it), so it must not have
    changed anything."""
    assert r.status >= 400 or r.method in ("GET", "HEAD"), ("a documentation-only example changed state", r.method, r.path)
    w(response(r, causes_text(causes) if causes else desc, extra=("allow",) if causes else ()))
    return r

BIG = b"[" + b"1," * 600000 + b"1]"
def too_large():
    """413: a body over 1 MiB is not written into the document, so this one is documentation only."""
    return doc(expect(call(CUR[0], CUR[1], raw=BIG), 413), ["the request body is larger than 1 MiB (1048576 bytes)"])

HOME_405 = expect(call("POST", "/", None), 405)
# The names `GET /schemas` lists, for the description of `{object}`.
SCHEMA_NAMES = ", ".join(x["type"] for x in expect(call("GET", "/schemas", None), 200).json())

w("""FORMAT: 1A
HOST: http://127.0.0.1:3000

# vNext Compute API

The Compute API of this project: Spin WASI HTTP components, run by the native
host `vnext`. This document is kept true to the code: it describes exactly the
routes, methods, status codes, headers and bodies that the components serve
today (the route table is `crates/core/src/routes.rs`), and every example below
was captured from a running host. The test `tests/api/apiary.rs` checks it
against the route table and a live host, and Dredd (`scripts/dredd.sh`)
replays every `+ Request` of it, in order, against a fresh host and checks
each answer against the `+ Response` that follows. A response written without
a request of its own was captured from the request its description names
(another path or query); Dredd does not replay those. What the contract
asks for and the code does not do yet is listed in the section "Not yet
implemented", and every deliberate difference from the 2014 proposal's wire
shapes in the last section, "Differences from the 2014 proposal". The one route left out on purpose is
`POST /internal/events`, through which the hypervisor adapter reports
progress: it is not public (not in JSON-Home, authenticated by a secret
shared with the adapter instead of a token).

API version: **0.1.0** (semantic versioning; `api_version` in the JSON-Home
document and the `X-OpenStack-Compute-API-Version` header of every response).

## Discovery

`GET /` answers with a JSON-Home document that lists every route and the
methods it accepts; `GET /schemas` lists the JSON Schemas (draft 2020-12) of the
payloads, and `GET /schemas/{object}` returns one of them. The server_task
schema also carries the task transition table (`x-transitions`), the same data
as the "Task transitions" section below.

## Authentication

Every route except `GET /`, `GET /schemas`, `GET /schemas/{object}` and
`GET /openapi.json` needs
an `X-Auth-Token` header. The deployment chooses the verifier (Spin variable
`auth_verifier`). The examples here use the development one (`dev`, the
default; as Nova's noauth2, for trusted setups only): the token names the caller.

- `X-Auth-Token: <user-uuid>:<project-uuid>`: a member of that project.
- `X-Auth-Token: <user-uuid>:<project-uuid>:admin`: an elevated (admin) caller,
  who sees and may change everything.

With `keystone`, the token is an OpenStack Identity v3 token scoped to a
project: its user and project are the caller's, and the role `admin` makes an
elevated caller. A token Keystone does not accept is `401`; when Keystone
cannot be reached to check a token not checked recently, `503`.

UUIDs are accepted hyphenated or as 32 hex digits. A missing or malformed token
is `401`. A caller that is known but not allowed to do something is `403`. Things
that exist but belong to another project (and are not shared) are reported
exactly like missing ones: `404`.

## Headers on every response

- `X-OpenStack-Request-ID`: the caller's own `X-OpenStack-Request-ID` if it
  sent one of 1 to 128 visible ASCII characters, otherwise a new `req-<uuid>`.
  The host logs every request with it.
- `X-OpenStack-Compute-API-Version: 0.1.0`.
- `Content-Type`: `application/json`, except `application/json-home` for `GET /`
  and `text/plain` for the console log; `GET /schemas/{object}` answers
  `application/schema+json` instead when `Accept` prefers it. None on `204` and
  successful `HEAD` responses.

## Errors

Every error that a component returns has one body shape: `code` (the HTTP
status), `title` (its reason phrase), `message` (what went wrong and what to
do), and, when one field of the request is to blame, `field` (its JSON path,
e.g. `spec.cpu_units`, `servers[1].hostname`, or the query parameter).

    {"error": {"code": 400, "title": "Bad Request", "message": "...", "field": "spec.cpu_units"}}

Statuses, in the order the checks run:

- `404` a path that matches no route (any method), e.g. `/nope`. A path
  spelled as in the 2014 proposal (`/servers_tasks/...`, `/servers_types...`,
  `/project/...`, `/server/...`) that is a route once corrected gets `308`
  with `Location` set to the canonical path (query kept), for any method.
- `405` a route that does not accept the method; the `Allow` header lists the
  methods it does accept (the same list as `hints.allow` in JSON-Home).
  Checked before authentication.
- `401` a missing or malformed `X-Auth-Token` (authenticated routes only).
- `413` a request body larger than 1 MiB (1048576 bytes), on any route; a
  `Content-Length` over 8 MiB is refused by the host before the body is
  sent. The host also answers `431` to more than 100 request headers or
  more than 32 KiB of them, and `408` to a body not received within 30 s;
  these come in the same shape, with `Connection: close`.
- `400` a body that is missing, not JSON, has unknown or mistyped fields,
  breaks a rule, names something that does not exist or is not visible, or
  duplicates a unique name; an unknown or invalid query parameter.
- `403`, `404`, `409` as each action says (`409`: the request is valid, but
  not in the resource's current state).
- `500` a bug or corrupt stored data, or a request that ran past the host's
  deadline (30 s by default); `503` the key-value store or the hypervisor
  adapter is unavailable, or a record is being changed by others right now:
  retry after the `Retry-After` seconds every `503` carries. These two are
  possible on every authenticated route and are not repeated below.

The `405` for `POST /` (with `Allow: GET`):

""" + ind(json.dumps(HOME_405.json()), 4) + """

## Collections

Every list route pages the same way:

| Route | Order | Filters |
|---|---|---|
| `GET /server_types` | creation | `tag` |
| `GET /projects/{project_id}/servers` | creation | `since`, `changes_since`, `virt_state` (default `ACTIVE`), `power_state` (default `RUNNING`), `launched_by`, `tag` |
| `GET /servers` | creation | the same, and `project` |
| `GET /servers/{server_id}/tasks` | newest first | `since`, `changes_since`, `state` |
| `GET /server_tasks/{server_task_id}/items` | the order the steps run | `since`, `changes_since`, `state` |
| `GET /placements` | inventory order | `tag`, `parent_placement` |

- `limit`: page size, an integer from 1 to 1000 (default 20); anything else is `400`.
- `marker`: the `id` of the last item of the previous page; an id that is not
  in the collection, or names an item you may not see, is `400` (the same
  answer as for an unknown id). Filters do not apply to the marker itself,
  so a walk goes on when its last item stopped matching meanwhile.
- Filters: a filter may be repeated and then means any of its values
  (`?virt_state=ACTIVE&virt_state=STOPPED`); different filters must all
  match. A value that is not valid for its filter, and any query parameter
  the route does not list, is `400` naming the parameter in `field`.
- Time filters take an RFC 3339 time. `since` is the proposal's: servers
  *launched*, tasks *created* (started), items *started* at or after it (an
  item still `WAITING` has not started). `changes_since` keeps what
  *changed* in any way at or after it (a server's state, a task's progress,
  an item's start or end): the filter to poll with.
- Server lists show, as in the proposal, only servers that are up
  (`virt_state=ACTIVE` and `power_state=RUNNING`) unless the request names a
  state filter: naming either one applies exactly the state filters named
  (`?virt_state=STOPPED` finds stopped servers), and the value `ANY` drops
  that filter, so `?virt_state=ANY` lists servers in every state.
- Lists show only what the caller may see; a non-admin who names another
  project (`project`) or another user (`launched_by`) gets `400`, not an
  empty page.

The body is `{"<collection>": [...], "_links": {"self": {"href"}, "next": {"href"}}}`,
with the proposal's collection keys: `server_types`, `servers`, `tasks`,
`items`, `placements`; `next` appears only when another page exists, and
carries the same query plus the new `marker`. Server list items are the
server without `networking` and `block_devices`. Tag lists and the answer
to a launch are bare arrays, as in the proposal.

What a page costs: servers, server types and tasks are kept in collection
indexes (id lists in creation order, stored in pages of 256 ids, plus each
id's page), so a page is found from its marker directly and an unfiltered
page reads `limit` records (plus one, to know whether `next` exists) however
large the collection is; a filter reads as many more records as it skips.
A server launched while a client pages through a list appears at the end,
and pages already read do not shift. A server transferred to another
project leaves the old project's list and is appended to the new one's.

## Conventions

- Ids are UUIDs, always written lowercase and hyphenated.
- Timestamps are RFC 3339 in UTC with a `Z` suffix.
- Tags are 1 to 50 characters without `/`, `,` or control characters, at most
  50 per resource; a tag list is a set (sorted, duplicates dropped).
- Every resource has `_links` with `self` and `describedby` (its schema),
  against which the tests validate every answer.
- Long work is asynchronous: `202 Accepted` and a task to poll.
""")


# ---------------------------------------------------------------- root
w("""
# Group Root and schemas

No authentication, no state.

## Home [/]

The JSON-Home document: every public route, keyed `rel/<name>` with the
proposal's relation names, with `href`, or `href-template` (RFC 6570: path
variables, then the query parameters the route takes as `{?a,b}`) and
`href-vars` (each variable pointing at the schema property it takes its
values from; query parameters at `/schemas/query`), and `hints`: `allow` (the
methods), `formats` (the response media types), and `acceptPost` for routes
that take a POST. `rel/server_type` and `rel/server_type_by_name` are the
same route (`/server_types/{server_type_id}` and
`/server_types/{server_type_name}`). Allow: `GET`.

### Get the JSON-Home document [GET]

""")
action("GET", "/")
tx(200, token=None)

w("""
## Schema index [/schemas]

The published schemas, as the proposal lists them: a bare array of
`{type, description, _links: {"rel/schema"}}`. Allow: `GET`.

### List the schemas [GET]

""")
action("GET", "/schemas")
tx(200, token=None)

w("""
## Schema [/schemas/{object}]

One JSON Schema (draft 2020-12), the one the code validates requests with.
It is `application/json`, as in the proposal, or `application/schema+json`
when `Accept` prefers that (the proposal's spelling `application/json+schema`
is understood too). `server_task` adds `x-transitions` (see "Task
transitions"); `server_launch` describes the body of a launch; `query` every
query parameter; `error` the error body. Allow: `GET`.

+ Parameters
    + object: `tag` (string) - A schema name from `GET /schemas`: """ + SCHEMA_NAMES + """.

### Get a schema [GET]

""")
action("GET", "/schemas/tag")
tx(200, token=None)
doc(expect(call("GET", "/schemas/tag", None, headers={"Accept": "application/schema+json"}), 200),
    desc="The same with `Accept: application/schema+json`: the body is the same, the type `application/schema+json`.")
doc(expect(call("GET", "/schemas/flavor", None), 404), ["no schema has that name (here `GET /schemas/flavor`)"])

w("""
## OpenAPI document [/openapi.json]

The API as OpenAPI 3.1, generated from the same route table as JSON-Home
and the same JSON Schemas as `/schemas/{object}` (embedded under
`components/schemas`; request bodies are the request objects, so a client
generated from it validates as the API does). Each operation lists its
success status and the error statuses of this document; every operation
that reaches the key-value store or the hypervisor may also answer `503`
with `Retry-After`. The adapter's internal events route is left out.
Allow: `GET`.

### Get the OpenAPI document [GET]

""")
action("GET", "/openapi.json")
# The document is ~100 KB: the example keeps its top level and one path,
# which is what Dredd compares (keys present, their types).
full = expect(call("GET", "/openapi.json", None), 200)
short = full.json()
short["paths"] = {"/": short["paths"]["/"]}
short["components"] = {"schemas": {"tag": short["components"]["schemas"]["tag"]},
                       "securitySchemes": short["components"]["securitySchemes"]}
w(request(None, accept="application/json"))
w(response(R(full.method, full.path, full.status, full.headers, json.dumps(short))))

# ---------------------------------------------------------------- server types
TYPE_FIELDS = """
A server type (flavor) has: `id`; `name` (unique; 1 to 255 characters, no `/`,
no control characters, no leading or trailing spaces, and not a UUID, since
names and ids share `/server_types/{server_type_id}`); `description`
(at most 1024 characters, default empty); `visibility` (`PUBLIC` or `PRIVATE`,
default `PRIVATE`; only admins may make a type `PUBLIC`); `spec` with
`memory_mb` (integer >= 0, required), `root_disk_gb` (integer >= 0, default
10), `cpu_units` (integer >= 1, required), `rxtx_factor` (number >= 0.1,
optional) and `swap_mb` (integer >= 0, optional); `tags`; `shares`
(`users` and `projects`: lists of UUIDs). The lists of `shares` are the
owner's (the creator's project) and admins' to see: everyone else gets both
empty.

A caller sees a type if it is `PUBLIC`, owned by its project, or shared with
its user or its project; admins see all. Only the owner and admins may change
a type, its tags or its shares.
"""
HIDDEN_TYPE = "no type has this id or name, or the caller may not see it"
NOT_OWNER = "the caller is neither the owner nor an admin"
w("""
# Group Server types
""" + TYPE_FIELDS + """
## Server types [/server_types]

Allow: `GET`, `POST`.

### Create a server type [POST]

`name` and `spec` are required; `description`, `visibility`, `tags` and
`shares` are optional. Unknown fields are refused.

""")
action("POST", "/server_types")
TYPE_REQ = {"name": "m1.small", "description": "1 vCPU, 2 GiB RAM", "spec": {"memory_mb": 2048, "root_disk_gb": 20, "cpu_units": 1},
            "tags": ["general"], "shares": {"users": [], "projects": [P2]}}
TY = tx(201, body=TYPE_REQ, desc="The new type; `Location` is its URI.", extra=("location",)).json()["id"]
TY2 = tx(201, ADMIN, {"name": "m1.large", "visibility": "PUBLIC", "spec": {"memory_mb": 8192, "cpu_units": 4, "rxtx_factor": 1.5, "swap_mb": 1024}},
         name="Admin", desc="An admin may create a `PUBLIC` type.", extra=("location",)).json()["id"]
tx(201, body={"name": "tmp.type", "spec": {"memory_mb": 512, "cpu_units": 1}}, name="Minimal",
   desc="Only `name` and `spec` (this type is deleted below).", extra=("location",))
tx(400, body={"name": "m1.small", "spec": {"memory_mb": 2048, "cpu_units": 1}}, name="Taken name",
   causes=["the body is missing, not JSON, or has an unknown or mistyped field",
           "a rule is broken (`name` empty, too long or a UUID; `description` longer than 1024; `spec.cpu_units` < 1; `spec.rxtx_factor` < 0.1; a negative size; an invalid tag or more than 50; a share that is not a UUID)",
           "another type already has this name"])
tx(403, body={"name": "m1.shared", "visibility": "PUBLIC", "spec": {"memory_mb": 2048, "cpu_units": 1}}, name="Public",
   causes=["a non-admin asks for `visibility: PUBLIC`"])
unauth()
too_large()

LIST_400 = ["`limit` is not an integer from 1 to 1000", "`marker` is not the id of an item of the list that you may see"]
w("""
### List server types [GET /server_types{?limit,marker,tag}]

Every type the caller may see (as above; admins see all), in creation order.

+ Parameters
    + limit: `1` (number, optional) - Page size, 1 to 1000.
        + Default: `20`
    + marker (string, optional) - Id of the last type of the previous page.
    + tag (string, optional) - Only types with this tag; repeat for any of several.

""")
action("GET", "/server_types?limit=1")
tx(200, desc="The first page of what the owner of `m1.small` sees, with its `next` link.")
tx(200, THIRD, name="Public only", desc="A member of a project nothing is shared with sees the `PUBLIC` types only.")
unauth()
doc(expect(call("GET", "/server_types?tag=general"), 200), desc="The types tagged `general` (`?tag=general`):")
doc(expect(call("GET", "/server_types?limit=1001"), 400),
    LIST_400 + ["a `tag` is not a valid tag", "another query parameter is given"])

w("""
## Server type [/server_types/{server_type_id}]

Allow: `GET`, `PATCH`, `DELETE`.

+ Parameters
    + server_type_id: `m1.small` (string) - The type's id, or its name (a segment that parses as a UUID is an id; JSON-Home names this form `rel/server_type_by_name`).

### Get a server type [GET]

""")
action("GET", "/server_types/m1.small")
tx(200, desc="As seen by the owner (with the `shares` lists).")
tx(200, OTHER, name="Shared", desc="As seen by a member of a project the type is shared with: `shares` has both lists empty.")
tx(404, THIRD, name="Not visible", causes=[HIDDEN_TYPE])
unauth()
TYPE_404 = doc(expect(call("GET", "/server_types/m9.huge"), 404), desc="Unknown names (here `m9.huge`) are the same `404`.")

w("""
### Update a server type [PATCH]

Any of `name`, `description`, `visibility`, `spec`; the fields sent replace
the stored ones (a new `spec` replaces the whole spec; servers already
launched keep their copy). `tags` and `shares` have their own routes and are
refused here.

""")
action("PATCH", "/server_types/m1.small")
tx(204, body={"description": "1 vCPU, 2 GiB RAM, SSD"})
tx(400, body={"tags": ["ssd"]}, name="Tags",
   causes=["the body is missing, not JSON, or has an unknown or mistyped field",
           "`tags` or `shares` is sent",
           "a rule is broken (as for create)",
           "the new name is taken by another type"])
tx(403, OTHER, {"description": "mine now"}, name="Not owner", causes=[NOT_OWNER, "a non-admin sets `visibility: PUBLIC`"])
tx(404, THIRD, {"description": "mine now"}, name="Not visible", causes=[HIDDEN_TYPE])
unauth()
too_large()

w("""
### Delete a server type [DELETE]

The name becomes free again. Servers launched with the type keep their spec.

+ Parameters
    + server_type_id: `tmp.type` (string) - The type's id or name.

""")
action("DELETE", "/server_types/tmp.type")
tx(204)
tx(404, name="Again", causes=[HIDDEN_TYPE])
unauth()
doc(expect(call("DELETE", "/server_types/m1.large"), 403), [NOT_OWNER + " (here a member deleting the admin's `PUBLIC` type `m1.large`)"])

def type_param(name="m1.small"):
    return f"""+ Parameters
    + server_type_id: `{name}` (string) - The type's id or name.
"""

w("""
## Server type tags [/server_types/{server_type_id}/tags]

The type's tags as a set: a bare array, as in the proposal. Reading needs
only visibility; changing needs ownership. Allow: `GET`, `PUT`, `DELETE`.

""" + type_param() + """
### List the tags [GET]

""")
action("GET", "/server_types/m1.small/tags")
tx(200)
tx(404, THIRD, name="Not visible", causes=[HIDDEN_TYPE])
unauth()

w("""
### Replace the tags [PUT]

The body is a JSON array of tags, as `GET` answers (so what was read can be
written back), or `{"tags": [...]}`; duplicates collapse.

""")
action("PUT", "/server_types/m1.small/tags")
tx(204, body=["general", "ssd"])
tx(400, body=["a/b"], name="Bad tag", causes=["the body is missing, not JSON, or not an array of strings",
                                              "a tag is invalid, or there are more than 50"])
tx(403, OTHER, ["general"], name="Not owner", causes=[NOT_OWNER])
tx(404, THIRD, ["general"], name="Not visible", causes=[HIDDEN_TYPE])
unauth()
too_large()

w("""
### Remove every tag [DELETE]

""" + type_param("m1.large") + """
""")
action("DELETE", "/server_types/m1.large/tags")
tx(204, ADMIN, desc="An admin clears the tags of `m1.large`.")
tx(403, name="Not owner", causes=[NOT_OWNER])
unauth()
doc(TYPE_404, [HIDDEN_TYPE])

w("""
## Server type tag [/server_types/{server_type_id}/tags/{tag}]

Allow: `PUT`, `DELETE`.

+ Parameters
    + server_type_id: `m1.small` (string) - The type's id or name.
    + tag: `gpu` (string) - The tag (percent-encoded in the path).

### Add a tag [PUT]

Idempotent: adding a tag the type has already is `204`.

""")
action("PUT", "/server_types/m1.small/tags/gpu")
tx(204)
tx(403, OTHER, name="Not owner", causes=[NOT_OWNER])
tx(404, THIRD, name="Not visible", causes=[HIDDEN_TYPE])
unauth()
doc(expect(call("PUT", "/server_types/m1.small/tags/a,b"), 400), ["the tag is invalid (here `a,b`)", "the type would have more than 50 tags"])

w("""
### Remove a tag [DELETE]

""")
action("DELETE", "/server_types/m1.small/tags/gpu")
tx(204)
tx(404, name="Again", causes=["the type does not have this tag", HIDDEN_TYPE])
tx(403, OTHER, name="Not owner", causes=[NOT_OWNER])
unauth()

w("""
## Server type shares [/server_types/{server_type_id}/shares]

Who else may see and launch a `PRIVATE` type: users and projects. Only the
owner and admins may read or change the shares. Allow: `GET`, `PUT`, `DELETE`.

""" + type_param() + """
### Get the shares [GET]

""")
action("GET", "/server_types/m1.small/shares")
tx(200)
tx(403, OTHER, name="Not owner", causes=["the caller may see the type but is neither its owner nor an admin"])
tx(404, THIRD, name="Not visible", causes=[HIDDEN_TYPE])
unauth()

w("""
### Replace the shares [PUT]

`users` and `projects` are both optional (a missing one becomes empty).

""")
action("PUT", "/server_types/m1.small/shares")
SHARES = {"users": ["55555555-5555-4555-8555-555555555555"], "projects": [P2]}
tx(204, body=SHARES)
tx(400, body={"users": ["bob"]}, name="Not a UUID", causes=["the body is missing, not JSON, or has an unknown or mistyped field",
                                                           "an entry is not a UUID"])
tx(403, OTHER, SHARES, name="Not owner", causes=[NOT_OWNER])
tx(404, THIRD, SHARES, name="Not visible", causes=[HIDDEN_TYPE])
unauth()
too_large()

w("""
### Remove every share [DELETE]

""" + type_param("m1.large") + """
""")
action("DELETE", "/server_types/m1.large/shares")
tx(204, ADMIN, desc="An admin clears the shares of `m1.large`.")
tx(403, name="Not owner", causes=[NOT_OWNER])
unauth()
doc(TYPE_404, [HIDDEN_TYPE])

for kind, var, example, rel_title in [
        ("users", "user_id", "66666666-6666-4666-8666-666666666666", "Server type user share"),
        ("projects", "project_id", "77777777-7777-4777-8777-777777777777", "Server type project share")]:
    one = kind[:-1]
    w(f"""
## {rel_title} [/server_types/{{server_type_id}}/shares/{kind}/{{{var}}}]

Allow: `PUT`, `DELETE`.

+ Parameters
    + server_type_id: `m1.small` (string) - The type's id or name.
    + {var}: `{example}` (string) - The {one}'s UUID.

### Share with a {one} [PUT]

Idempotent: sharing again is `204`.

""")
    path = f"/server_types/m1.small/shares/{kind}/{example}"
    action("PUT", path)
    tx(204)
    tx(403, OTHER, name="Not owner", causes=[NOT_OWNER])
    tx(404, THIRD, name="Not visible", causes=[HIDDEN_TYPE])
    unauth()
    bad = doc(expect(call("PUT", f"/server_types/m1.small/shares/{kind}/bob"), 400), [f"`{var}` is not a UUID (here `bob`)"])
    w(f"""
### Stop sharing with a {one} [DELETE]

""")
    action("DELETE", path)
    tx(204)
    tx(404, name="Again", causes=[f"the type is not shared with this {one}", HIDDEN_TYPE])
    tx(403, OTHER, name="Not owner", causes=[NOT_OWNER])
    unauth()
    doc(bad, [f"`{var}` is not a UUID"])

# ---------------------------------------------------------------- servers
w("""
# Group Servers

A server has: `id`; `hostname` (unique within its project, case-insensitive;
1 to 63 letters, digits and hyphens, not starting or ending with a hyphen);
`project_id`; `launched_by` (user id); `launched_at`; `launch_keypair_id`,
`template_id`, `type_id`; `placement_id` (the placement given at launch or by
the last MOVE; without one, the placement of the compute node the scheduler
chose, shown from the launch on; null only when no node could take a server
launched without one); `power_state` (`RUNNING`, `PAUSED`, `SHUTDOWN`,
`CRASHED`, `SUSPENDED`; `SHUTDOWN` until the hypervisor first reports the
server running); `virt_state` (`ACTIVE`, `BUILDING`, `PAUSED`,
`SUSPENDED`, `STOPPED`, `RESCUED`, `RESIZED`, `TERMINATED`, `SHELVED`,
`SHELVED_OFFLOADED`, `ERROR`); `spec` (copied from the type at launch);
`block_devices` (`device`, `type`: `EPHEMERAL` or `PERSISTENT`); `networking`
(`access`: `ip4` and `ip6` lists; `interfaces`: `name`, `ip4`, `ip6`, `mac`);
`properties`; `tags`; `locked`; `_elevated` (`{}` for members; for admins,
`compute_node_hostname`, the elevated `properties` and `reclaimed_at`);
`_links` (`self`, `describedby`, `rel/server_tasks`).

There is no DELETE: a server is ended with a `TERMINATE` task and stays
readable in `TERMINATED`. A `RESTORE` task brings it back until the hypervisor
adapter reclaims it, `reclaim_after_seconds` after the TERMINATE (inventory
`[lifecycle]`, default one day): its disk and domain are deleted, it stays
readable as `TERMINATED` (admins see `_elevated.reclaimed_at`), and `RESTORE`
is `409`.

The hypervisor's view wins between tasks: a guest that powers itself off or
crashes shows `STOPPED` with `power_state` `SHUTDOWN` or `CRASHED`, one
started or resumed behind the API's back `ACTIVE` again, within the
adapter's sync interval (`[lifecycle] sync_interval_ms`, default 2 s), as
Nova's power-state sync does.

## Project servers [/projects/{project_id}/servers]

Allow: `GET`, `POST`.

+ Parameters
    + project_id: `22222222-2222-4222-8222-222222222222` (string) - The project to launch in: the token's project (any project for admins).

### Launch servers [POST]

`servers` lists 1 to 100 servers; `defaults` gives values for all of them,
and each entry may override any default. Fields: `type_id` (required, in the
entry or in `defaults`), `template_id`, `keypair_id`, `placement_id` (a
placement of the deployment; the server runs there or in a descendant),
`user_data` (base64, at most 65535 characters), `hostname` (entries only),
`hostname_pattern` (used when an entry has no `hostname`: `%(rand_num)Nd`
becomes N random digits, 6 without N; a generated name that is taken is drawn
again, up to 5 times), `affinity` (`near` and `not_near`, each with
`server_ids` and `server_tags`: hard rules for the scheduler, kept by later
MOVE tasks; `near` by `server_tags` only, when no placed server carries one of
the tags yet, places the server freely, as the first member of a group).

All or nothing: the whole body is checked, the types and placements resolved,
and every hostname claimed before anything is created; on a `400` nothing is
left behind. Each server starts in `BUILDING` with a `CREATE` task; the answer
is a bare array, as in the proposal, of `{id, hostname, launched_at, _links}`
in request order. What happens to a server afterwards (including a
failed spawn, which leaves it in `ERROR` with an `ABORTED` task) shows in its
state and its tasks, not here. The schema is `GET /schemas/server_launch`.

""")
action("POST", f"/projects/{P}/servers")
LAUNCH = {"defaults": {"type_id": TY, "template_id": "9a8b7c6d-0000-4000-8000-00000000aaaa",
                       "placement_id": "7d3b3a10-0000-4000-8000-000000000002", "hostname_pattern": "web-%(rand_num)4d"},
          "servers": [{"hostname": "web-1"}, {}, {"hostname": "db-1", "type_id": TY2, "user_data": "IyEvYmluL3NoCmVjaG8gaGVsbG8K"}]}
S = tx(202, body=LAUNCH).json()[0]["id"]
F = tx(202, body={"defaults": {"type_id": TY}, "servers": [{"hostname": "fail-1"}]}, name="Failing spawn",
       desc="The answer does not tell how the spawn will go: this server's spawn fails later (the test driver fails every `fail-` hostname), see its tasks below.").json()[0]["id"]
tx(400, body={"defaults": {"type_id": TY}, "servers": [{"hostname": "web-1"}]}, name="Taken hostname",
   causes=["the body is missing, not JSON, or has an unknown or mistyped field",
           "`servers` is empty or has more than 100 entries",
           "`defaults` sets `hostname`",
           "an entry has no `type_id`, no `hostname` and no `hostname_pattern`, an invalid hostname or pattern, or invalid `user_data`",
           "an id (`type_id`, `template_id`, `keypair_id`, `placement_id`, affinity `server_ids`) is not a UUID, or an affinity tag is invalid",
           "a hostname appears twice in the request, or is already used in the project",
           "a `type_id` names no type the caller may see",
           "a `placement_id` is not a placement of this deployment",
           "the deployment keeps a template catalogue and `template_id` is missing or names none of its templates, or the type gives less memory or root disk than the template needs"])
unauth()
doc(expect(call("POST", f"/projects/{P2}/servers", body={"defaults": {"type_id": TY}, "servers": [{"hostname": "web-9"}]}), 403),
    ["a non-admin launches in a project other than the token's"])
doc(expect(call("POST", "/projects/my-project/servers", body={"servers": [{"hostname": "web-9"}]}), 404), ["`project_id` is not a UUID"])
too_large()

# The server lists come before the single-server sections: those launch
# servers of their own with requests Dredd does not replay (see LOCKED and
# GONE below), which would make a later list longer here than in the replay.
SERVER_FILTERS = """    + since (string, optional) - Only servers launched at or after this RFC 3339 time, e.g. `2026-01-01T00:00:00Z`.
    + changes_since (string, optional) - Only servers changed (in any way) at or after this RFC 3339 time.
    + virt_state: `ANY` (string, optional) - Only servers in this virt state, e.g. `STOPPED`; repeat for any of several; `ANY` for every state. Without either state filter: `ACTIVE`.
    + power_state (string, optional) - Only servers in this power state, e.g. `SHUTDOWN`; repeat for any of several; `ANY` for every state. Without either state filter: `RUNNING`.
    + launched_by (string, optional) - Only servers launched by this user id (non-admins: their own id only).
    + tag (string, optional) - Only servers with this tag; repeat for any of several.
"""
SERVER_LIST_400 = LIST_400 + ["`since` or `changes_since` is not an RFC 3339 date-time",
                              "`virt_state` or `power_state` is neither one of the states listed above nor `ANY`",
                              "`launched_by` is not a UUID, or a non-admin names another user",
                              "a `tag` is not a valid tag", "another query parameter is given"]
w("""
### List a project's servers [GET /projects/{project_id}/servers{?limit,marker,since,changes_since,virt_state,power_state,launched_by,tag}]

The project's servers, in launch order, as list items (no `networking`, no
`block_devices`). Members list their token's project; admins any project.
Without a state filter only the servers that are up are listed (see
Collections).

+ Parameters
    + project_id: `""" + P + """` (string) - The project.
    + limit: `2` (number, optional) - Page size, 1 to 1000.
        + Default: `20`
    + marker (string, optional) - Id of the last server of the previous page.
""" + SERVER_FILTERS + """
""")
action("GET", f"/projects/{P}/servers?limit=2&virt_state=ANY")
tx(200, desc="The first page of servers in any state, with its `next` link.")
doc(expect(call("GET", f"/projects/{P}/servers"), 200),
    desc="Without a state filter (`GET /projects/{project_id}/servers`): only the servers that are up, `ACTIVE` and `RUNNING`; `fail-1`, in `ERROR`, is not listed.")
tx(404, OTHER, name="Other project", causes=["a non-admin names a project other than its token's", "`project_id` is not a UUID"])
unauth()
doc(expect(call("GET", f"/projects/{P}/servers?launched_by={U2}"), 400),
    [c + (" (here `" + U2 + "`)" if c.startswith("`launched_by`") else "") for c in SERVER_LIST_400])

w("""
## Servers of every visible project [/servers{?limit,marker,since,changes_since,project,virt_state,power_state,launched_by,tag}]

Allow: `GET`.

+ Parameters
    + limit: `2` (number, optional) - Page size, 1 to 1000.
        + Default: `20`
    + marker (string, optional) - Id of the last server of the previous page.
    + project (string, optional) - Only servers of this project id; repeat for any of several (non-admins: their token's project only).
""" + SERVER_FILTERS + """
### List servers [GET]

For a member, the servers of its token's project (as
`GET /projects/{project_id}/servers`); for an admin, the servers of every
project, in launch order. Same list items as the project's list.

""")
action("GET", "/servers?limit=2&virt_state=ANY")
tx(200, desc="A member: its project's servers, in any state.")
tx(200, ADMIN, name="Admin", desc="An admin: every project's servers, with `_elevated` filled in.")
unauth()
doc(expect(call("GET", f"/servers?project={P2}"), 400),
    SERVER_LIST_400[:4] + ["`project` is not a UUID, or a non-admin names a project other than its token's (here `" + P2 + "`)"] + SERVER_LIST_400[4:])

SERVER_404 = "no server has this id (or it is not a UUID), or it belongs to another project"
w("""
## Project server by hostname [/projects/{project_id}/servers/{server_hostname}]

Allow: `GET`.

+ Parameters
    + project_id: `22222222-2222-4222-8222-222222222222` (string) - The server's project.
    + server_hostname: `web-1` (string) - The hostname, in any case.

### Get a server by hostname [GET]

""")
action("GET", f"/projects/{P}/servers/web-1")
tx(200, desc="The same body as `GET /servers/{server_id}`.")
tx(404, OTHER, name="Other project", causes=["no server has this hostname in the project (or it is still being launched)",
                                             "`project_id` is not a UUID, or a non-admin names another project"])
unauth()
doc(expect(call("GET", f"/projects/{P}/servers/web-404"), 404), desc="An unknown hostname (here `web-404`) is the same `404`.")

w("""
## Server [/servers/{server_id}]

Allow: `GET`, `HEAD`, `PATCH`.

+ Parameters
    + server_id: `""" + S + """` (string) - The server's id.

### Get a server [GET]

""")
action("GET", f"/servers/{S}")
tx(200, desc="As seen by a member of the project.")
tx(200, ADMIN, name="Admin", desc="An admin sees `_elevated` filled in.")
tx(404, OTHER, name="Other project", causes=[SERVER_404])
unauth()

w("""
### Get a server's states [HEAD]

No body: both states come as headers, always
(`X-OpenStack-Compute-Server-Virt-State` and
`X-OpenStack-Compute-Server-Power-State`, the same values as `GET` shows).

""")
action("HEAD", f"/servers/{S}")
# The errors first: the 200 documents the states of a spawned server (about
# 30 ms with Dredd's driver), so it comes as late as it can.
tx(404, OTHER, name="Other project", causes=[SERVER_404 + "; no body (HEAD)"])
unauth()
tx(200, name="States", extra=("x-openstack-compute-server-virt-state", "x-openstack-compute-server-power-state"))

# ------------------------------------------------- single-server routes
# PATCH (an action of "## Server" above), tags, console and diagnostics of
# S, web-1 in project P. The renames and the transfer below are undone by
# the next replayed request, so the sections after this one see S as before
# (except its place in P's list, which no later example shows).
w("""
### Rename or transfer a server [PATCH]

The body has `hostname` (rename; unique within the project, case-insensitive),
`project_id` (transfer to another project), or both; nothing else. Renaming
claims the new name before the server changes, so a taken name changes
nothing; the old name is free again afterwards. A transfer needs membership
in both projects or an admin (development tokens name one project, so in
practice admins transfer); the server's tasks go with it, and its hostname
must be free in the target project. A locked server refuses a PATCH from
non-admins. The schema is `GET /schemas/server_patch`.

""")
action("PATCH", f"/servers/{S}")
tx(204, body={"hostname": "www-1"}, name="Rename")
tx(204, body={"hostname": "web-1"}, name="Rename back")
tx(204, ADMIN, {"project_id": P2}, name="Transfer", desc="An admin moves the server to project `" + P2 + "`.")
tx(204, ADMIN, {"project_id": P}, name="Transfer back")
tx(400, body={"hostname": "db-1"}, name="Taken hostname",
   causes=["the body is missing, not JSON, empty (`{}`), or has an unknown or mistyped field",
           "`hostname` is not a valid hostname, or `project_id` is not a UUID",
           "`hostname` is already used by another server in the (target) project"])
tx(403, body={"project_id": P2}, name="Transfer by a member",
   causes=["a non-admin transfers the server to a project other than the token's"])
tx(404, OTHER, {"hostname": "www-1"}, name="Other project", causes=[SERVER_404])
unauth()
too_large()
# A locked server of its own, so that S's task history stays as the task
# section documents it; documentation only.
LOCKED = expect(call("POST", f"/projects/{P}/servers", body={"defaults": {"type_id": TY}, "servers": [{"hostname": "locked-1"}]}), 202).json()[0]["id"]
expect(call("POST", f"/servers/{LOCKED}/tasks", body={"action": "LOCK"}), 202)
doc(expect(call("PATCH", f"/servers/{LOCKED}", body={"hostname": "locked-2"}), 409),
    ["the server is locked and the caller is not an admin (here another locked server, `locked-1`)"])

w("""
## Server tags [/servers/{server_id}/tags]

The server's tags as a set, a bare array as in the proposal (1 to 50
characters each, no `/` or `,`; at most 50). Members of the server's project may read and change them; a locked
server takes changes from admins only. Allow: `GET`, `PUT`, `DELETE`.

+ Parameters
    + server_id: `""" + S + """` (string) - The server's id.

### List the tags [GET]

""")
action("GET", f"/servers/{S}/tags")
tx(200)
tx(404, OTHER, name="Other project", causes=[SERVER_404])
unauth()

w("""
### Replace the tags [PUT]

The body is the array `GET` returns (`{"tags": [...]}` is accepted too);
duplicates collapse.

""")
action("PUT", f"/servers/{S}/tags")
tx(204, body=["frontend", "prod"])
tx(400, body=["a/b"], name="Bad tag",
   causes=["the body is missing, not JSON, or neither an array of strings nor `{\"tags\": [...]}`",
           "a tag is invalid, or there are more than 50"])
tx(404, OTHER, {"tags": ["x"]}, name="Other project", causes=[SERVER_404])
unauth()
too_large()
doc(expect(call("PUT", f"/servers/{LOCKED}/tags", body={"tags": ["x"]}), 409),
    ["the server is locked and the caller is not an admin (here `locked-1`)"])

w("""
### Remove every tag [DELETE]

""")
action("DELETE", f"/servers/{S}/tags")
tx(204)
tx(404, OTHER, name="Other project", causes=[SERVER_404])
unauth()
doc(expect(call("DELETE", f"/servers/{LOCKED}/tags"), 409), ["the server is locked and the caller is not an admin"])

w("""
## Server tag [/servers/{server_id}/tags/{tag}]

Allow: `PUT`, `DELETE`.

+ Parameters
    + server_id: `""" + S + """` (string) - The server's id.
    + tag: `blue` (string) - The tag (percent-encoded in the path).

### Add a tag [PUT]

Idempotent: adding a tag the server has already is `204`.

""")
action("PUT", f"/servers/{S}/tags/blue")
tx(204)
tx(404, OTHER, name="Other project", causes=[SERVER_404])
unauth()
doc(expect(call("PUT", f"/servers/{S}/tags/a,b"), 400), ["the tag is invalid (here `a,b`)", "the server would have more than 50 tags"])
doc(expect(call("PUT", f"/servers/{LOCKED}/tags/blue"), 409), ["the server is locked and the caller is not an admin"])

w("""
### Remove a tag [DELETE]

""")
action("DELETE", f"/servers/{S}/tags/blue")
tx(204)
tx(404, name="Again", causes=["the server does not have this tag", SERVER_404])
unauth()
doc(expect(call("DELETE", f"/servers/{LOCKED}/tags/blue"), 409), ["the server is locked and the caller is not an admin"])

NOT_ON_NODE = "the server is not on a compute node: still being placed, never placed (failed launch), `SHELVED_OFFLOADED` or `TERMINATED`"
w("""
## Server console log [/servers/{server_id}/console_log{?lines}]

Allow: `GET`.

+ Parameters
    + server_id: `""" + S + """` (string) - The server's id.
    + lines: `5` (number, optional) - How many of the last lines, 1 to 65536.
        + Default: `65536`

### Read the console log [GET]

""")
action("GET", f"/servers/{S}/console_log?lines=5")
log = expect(call("GET", f"/servers/{S}/console_log?lines=5"), 200)
w(request(accept="text/plain"))
# The body is plain text, and this document's examples are JSON: the text
# is quoted in the description instead.
w(response(R(log.method, log.path, log.status, log.headers, ""),
           desc="The last `lines` lines of the server's serial console, as `text/plain`, each ending in a newline; for example:\n\n"
                + "\n".join("> " + l for l in log.body.splitlines())))
doc(expect(call("GET", f"/servers/{S}/console_log?lines=0"), 400), ["`lines` is not an integer from 1 to 65536", "another query parameter is given"])
tx(404, OTHER, name="Other project", causes=[SERVER_404])
unauth()
# A terminated server of its own (documentation only), for the 409 of all three reads.
import time as _time
GONE = expect(call("POST", f"/projects/{P}/servers", body={"defaults": {"type_id": TY}, "servers": [{"hostname": "gone-1"}]}), 202).json()[0]["id"]
for _ in range(500):
    if call("GET", f"/servers/{GONE}").json()["virt_state"] == "ACTIVE":
        break
    _time.sleep(0.02)
expect(call("POST", f"/servers/{GONE}/tasks", body={"action": "TERMINATE"}), 202)
for _ in range(500):
    if call("GET", f"/servers/{GONE}").json()["virt_state"] == "TERMINATED":
        break
    _time.sleep(0.02)
doc(expect(call("GET", f"/servers/{GONE}/console_log"), 409), [NOT_ON_NODE + " (here `gone-1`, terminated)"])

w("""
## Server console [/servers/{server_id}/consoles/{console_type}]

Allow: `GET`.

+ Parameters
    + server_id: `""" + S + """` (string) - The server's id.
    + console_type: `novnc` (string) - `novnc`, `xvpvnc`, `rdp` or `spice`.

### Get a console [GET]

A URI carrying a one-time token (`type`, `uri`, and `_links`: `self`,
`describedby`, `rel/server`); each call makes a new one.
Which types a server can have depends on its compute node. The schema is
`GET /schemas/server_console`.

""")
action("GET", f"/servers/{S}/consoles/novnc")
tx(200)
tx(404, OTHER, name="Other project", causes=[SERVER_404])
unauth()
doc(expect(call("GET", f"/servers/{S}/consoles/vnc"), 400),
    ["the type is none of `novnc`, `xvpvnc`, `rdp`, `spice` (here `vnc`)", "the server's compute node does not serve this type"])
doc(expect(call("GET", f"/servers/{GONE}/consoles/novnc"), 409), [NOT_ON_NODE])

w("""
## Server diagnostics [/servers/{server_id}/diagnostics]

Allow: `GET`.

+ Parameters
    + server_id: `""" + S + """` (string) - The server's id.

### Get diagnostics [GET]

The hypervisor's counters now: `cpu_time_ns`, `memory_used_mb`,
`memory_total_mb`, `uptime_seconds`, `disks` (`device`, `read_bytes`,
`write_bytes`, `read_requests`, `write_requests`) and `interfaces` (`name`,
`rx_bytes`, `tx_bytes`, `rx_packets`, `tx_packets`). The schema is
`GET /schemas/diagnostics`.

""")
action("GET", f"/servers/{S}/diagnostics")
tx(200)
tx(404, OTHER, name="Other project", causes=[SERVER_404])
unauth()
doc(expect(call("GET", f"/servers/{GONE}/diagnostics"), 409), [NOT_ON_NODE])

# ---------------------------------------------------------------- tasks
w("""
# Group Server tasks

A task is one asynchronous action on a server: `id`, `server_id`, `action`,
the action's arguments (only those given; `password` is never stored nor
shown), `state` (`RUNNING`, `COMPLETED`, `ABORTED`, `TIMED_OUT`),
`created_at`, `created_by`, `updated_at`, `error` (the reason, when `ABORTED`
or `TIMED_OUT`; else null), `_links` (`self`, `describedby`,
`rel/server_task_items`, `rel/server`).

A task's items are its steps on the hypervisor (see "Task transitions"); the
task ends `COMPLETED` when its last item does, and `ABORTED` or `TIMED_OUT`
with the first item that fails so.

## Server tasks [/servers/{server_id}/tasks]

Allow: `GET`, `POST`.

+ Parameters
    + server_id: `""" + S + """` (string) - The server's id.

### List a server's tasks [GET /servers/{server_id}/tasks{?limit,marker,since,changes_since,state}]

The whole history, newest first, under `tasks`.

+ Parameters
    + server_id: `""" + S + """` (string) - The server's id.
    + limit: `2` (number, optional) - Page size, 1 to 1000.
        + Default: `20`
    + marker (string, optional) - Id of the last task of the previous page.
    + since (string, optional) - Only tasks created (started) at or after this RFC 3339 time, e.g. `2026-01-01T00:00:00Z`.
    + changes_since (string, optional) - Only tasks updated at or after this RFC 3339 time.
    + state (string, optional) - Only tasks in this state, e.g. `RUNNING`; repeat for several.

""")
action("GET", f"/servers/{S}/tasks?limit=2")
T_CREATE = tx(200, desc="A server just launched: its CREATE task.").json()["tasks"][0]["id"]
tx(404, OTHER, name="Other project", causes=[SERVER_404])
unauth()
doc(expect(call("GET", f"/servers/{F}/tasks"), 200), desc="The tasks of a server whose spawn failed (`error` gives the reason):")
doc(expect(call("GET", f"/servers/{S}/tasks?limit=0"), 400),
    ["`limit` is not an integer from 1 to 1000", "`marker` is not the id of a task of this server",
     "`since` or `changes_since` is not an RFC 3339 date-time", "`state` is not a task state", "another query parameter is given"])

w("""
### Start a task [POST]

The body is `action` plus that action's arguments (the "Task transitions"
table lists them): `type_id` (RESIZE: a type other than the current one),
`template_id` (REBUILD; optional for RESCUE), `name` (SNAPSHOT, BACKUP; 1 to
255 characters), `password` (UPDATE_PASSWORD; not empty), `placement_id` and
`live` (MOVE, both optional), `volume_id` and optional `device` (a path under
`/dev/`) for the block-device actions, `network_id` or `mac`
(`52:54:00:12:34:56` form) for the network-interface actions.

A MOVE with `"live": true` moves the running guest without stopping it, to
a node of the same live-migration group as the server's node (operators
group the nodes that share disks and can reach each other); it is `409`
before any task exists when the server is `STOPPED` or no such node has
room, and the message names the cold MOVE (`"live": false`).

Answered `202` with the task (`Location` is its URI). LOCK and UNLOCK never
reach the hypervisor: they take effect at once, their task has no items and
is already `COMPLETED`, and a running task does not block them. A locked
server refuses every task from non-admins, except UNLOCK by the user who
locked it.

Templates are not a resource of this API, so a SNAPSHOT or BACKUP names
what it makes by its own `id`: once the task is `COMPLETED`, a deployment
that keeps a template catalogue (its libvirt nodes) has a template whose
`template_id` is the task's `id` and whose name is the task's `name`, which
later launches and REBUILDs may use (with a type of at least the snapshot's
root disk). The fake driver keeps no catalogue and accepts any template id.

""")
action("POST", f"/servers/{S}/tasks")
CONFLICT = ["another task is still RUNNING on the server (except for LOCK and UNLOCK)",
            "the action may not start from the server's `virt_state` (see \"Task transitions\")",
            "the server is locked and the caller is not an admin (nor, for UNLOCK, the user who locked it)",
            "LOCK of a locked server, UNLOCK of an unlocked one",
            "MOVE finds no other compute node with room in the placement that keeps the server's `affinity`",
            "RESTORE of a server that was reclaimed (its disk is deleted)"]
tx(202, body={"action": "SNAPSHOT", "name": "web-1-before-upgrade"}, extra=("location",))
tx(409, body={"action": "REBOOT"}, name="Busy", causes=CONFLICT)
tx(202, body={"action": "LOCK"}, name="Lock", desc="LOCK completes at once, even while another task runs.", extra=("location",))
tx(409, body={"action": "LOCK"}, name="Locked already", desc="The server is locked already: " + causes_text(CONFLICT))
tx(202, body={"action": "UNLOCK"}, name="Unlock", extra=("location",))
tx(400, body={"action": "RESIZE"}, name="Missing argument",
   causes=["the body is missing, not JSON, or has an unknown or mistyped field",
           "`action` is unknown, or is `CREATE` (only launches create CREATE tasks)",
           "a required argument is missing, an argument the action does not take is given, or neither `network_id` nor `mac` is given for an interface action",
           "an argument is invalid (an id that is not a UUID, an empty or long `name`, an empty `password`, a bad `mac` or `device`)",
           "RESIZE names the server's current type, or a type the caller may not see",
           "MOVE names a placement that is not in this deployment",
           "REBUILD or RESCUE names a template outside the deployment's catalogue (when it keeps one), or one the server is too small for"])
tx(404, OTHER, {"action": "REBOOT"}, name="Other project", causes=[SERVER_404])
unauth()
too_large()

TASK_404 = "no task has this id (or it is not a UUID), or its server belongs to another project"
w("""
## Server task [/server_tasks/{server_task_id}]

Allow: `GET`.

+ Parameters
    + server_task_id: `""" + T_CREATE + """` (string) - The task's id.

### Get a task [GET]

""")
action("GET", f"/server_tasks/{T_CREATE}")
tx(200, desc="A task that ended well. A failed one carries the reason in `error`, e.g. a CREATE whose spawn failed: `\"state\": \"ABORTED\", \"error\": \"injected: no bootable device\"`.")
tx(404, OTHER, name="Other project", causes=[TASK_404])
unauth()

w("""
## Server task items [/server_tasks/{server_task_id}/items{?limit,marker,since,changes_since,state}]

The steps of a task, in the order they run, under `items`: `id`, `task_id`,
`action` (see "Task transitions"), `state` (`WAITING`, `RUNNING`,
`COMPLETED`, `ABORTED`, `TIMED_OUT`), `created_at`, `started_at` and
`ended_at` (null until then: `started_at` while `WAITING`, `ended_at` while
open), `_links` (`self`, `describedby`, `rel/server_task`). Allow: `GET`.

+ Parameters
    + server_task_id: `""" + T_CREATE + """` (string) - The task's id.
    + limit: `1` (number, optional) - Page size, 1 to 1000.
        + Default: `20`
    + marker (string, optional) - Id of the last item of the previous page.
    + since (string, optional) - Only items started at or after this RFC 3339 time, e.g. `2026-01-01T00:00:00Z` (a `WAITING` item has not started).
    + changes_since (string, optional) - Only items that changed (created, started or ended) at or after this RFC 3339 time.
    + state: `COMPLETED` (string, optional) - Only items in this state; repeat for several.

### List a task's items [GET]

""")
action("GET", f"/server_tasks/{T_CREATE}/items?limit=1&state=COMPLETED")
ITEMS = tx(200, desc="One page of a filtered list, with its `next` link.").json()["items"]
tx(404, OTHER, name="Other project", causes=[TASK_404])
unauth()
doc(expect(call("GET", f"/server_tasks/{T_CREATE}/items"), 200), desc="The whole list (`GET /server_tasks/{server_task_id}/items`):")
doc(expect(call("GET", f"/server_tasks/{T_CREATE}/items?state=DONE"), 400),
    ["`limit` is not an integer from 1 to 1000", "`marker` is not the id of an item in the (filtered) list",
     "`since` or `changes_since` is not an RFC 3339 date-time", "`state` is not an item state", "another query parameter is given"])

ITEM = ITEMS[0]["id"]
w("""
## Server task item [/server_tasks/{server_task_id}/items/{server_task_item_id}]

One item, the target of each item's `_links.self` (the proposal has no such
route). Allow: `GET`.

+ Parameters
    + server_task_id: `""" + T_CREATE + """` (string) - The task's id.
    + server_task_item_id: `""" + ITEM + """` (string) - The item's id.

### Get a task item [GET]

""")
action("GET", f"/server_tasks/{T_CREATE}/items/{ITEM}")
tx(200)
tx(404, OTHER, name="Other project", causes=[TASK_404, "the task has no item with this id"])
unauth()

# ---------------------------------------------------------------- placements, projects
# Fixed ids of tests/fixtures/inventory.toml: region-one and az-1.
PL_REGION, PL_AZ1 = "7d3b3a10-0000-4000-8000-000000000001", "7d3b3a10-0000-4000-8000-000000000002"
w("""
# Group Placements

A placement is a container of compute resources (a region, a zone, a rack),
defined by the deployer in the host's inventory and read-only here; any
authenticated caller may read them. A placement has: `id`; `name`;
`description`; `parent_placement_id`; `parent_placement_ids`; `properties`
(string to string); `tags`; `_links` (`self`, `children`: the list filtered
on this placement as parent, `describedby`). A server placed in a placement
runs there or in any descendant.

Hierarchies may overlap: a placement may have several parents.
`parent_placement_id` is the first of them in inventory order (null for a
root), and `parent_placement_ids` lists them all.

## Placements [/placements{?limit,marker,tag,parent_placement}]

Allow: `GET`.

+ Parameters
    + limit: `2` (number, optional) - Page size, 1 to 1000.
        + Default: `20`
    + marker (string, optional) - Id of the last placement of the previous page.
    + tag (string, optional) - Only placements with this tag; repeat for any of several.
    + parent_placement (string, optional) - Only the direct children of the placement with this id; repeat for any of several.

### List placements [GET]

In inventory order. `tag` and `parent_placement` combine: a placement must
match both.

""")
action("GET", "/placements?limit=2")
tx(200, desc="The first page, with its `next` link.")
unauth()
doc(expect(call("GET", f"/placements?parent_placement={PL_AZ1}"), 200), desc="The children of az-1 (`?parent_placement=" + PL_AZ1 + "`); edge has two parents:")
doc(expect(call("GET", "/placements?parent_placement=7d3b3a10-0000-4000-8000-0000000000ff"), 400),
    ["`limit` is not an integer from 1 to 1000", "`marker` is not the id of a placement in the (filtered) list",
     "a `tag` is not a valid tag", "a `parent_placement` is not the id of a placement of this deployment",
     "another query parameter is given"])

w("""
## Placement [/placements/{placement_id}]

Allow: `GET`.

+ Parameters
    + placement_id: `""" + PL_REGION + """` (string) - The placement's id.

### Get a placement [GET]

""")
action("GET", f"/placements/{PL_REGION}")
tx(200, desc="A root placement.")
unauth()
doc(expect(call("GET", "/placements/region-one"), 404), ["no placement of this deployment has this id (or it is not a UUID)"])

w("""
# Group Projects

Projects belong to the identity service; the API shows a project's id and
the link to its servers. A member sees only its token's project; admins see
any.

## Project [/projects/{project_id}]

Allow: `GET`.

+ Parameters
    + project_id: `""" + P + """` (string) - The project's id.

### Get a project [GET]

""")
action("GET", f"/projects/{P}")
tx(200)
tx(404, OTHER, name="Other project", causes=["a non-admin names a project other than its token's", "`project_id` is not a UUID"])
unauth()

TRANSITIONS = expect(call("GET", "/schemas/server_task", None), 200).json()["x-transitions"]

# ---------------------------------------------------------------- transitions
def states(l):
    return ", ".join(l) if l else "(launch only)"
def args(r):
    parts = []
    if r["required_arguments"]:
        parts.append("required: " + ", ".join(r["required_arguments"]))
    if r["one_of_arguments"]:
        parts.append("one of: " + ", ".join(r["one_of_arguments"]))
    elif r["optional_arguments"]:
        parts.append("optional: " + ", ".join(r["optional_arguments"]))
    return "; ".join(parts) if parts else "-"

w("""
# Group Task transitions

Which task may start when, and what it leaves behind. The rows are the data of
`crates/core/src/transitions.rs`, also served as `x-transitions` in
`GET /schemas/server_task`; the test checks that this table matches it.

- **From**: the `virt_state`s the action may start from; from any other,
  `POST /servers/{server_id}/tasks` is `409`. CREATE is only made by a launch.
- **While running**: the `virt_state` while the task runs.
- **Completed** and **Aborted**: the `virt_state` after the task ends
  `COMPLETED`, or `ABORTED` / `TIMED_OUT`; "UNCHANGED" means the state the
  server had when the task started. The power state after completion is the
  one expected (the hypervisor's report wins); "-" leaves it as it was.
- **Items**: the task's items, in order, one hypervisor step each.

The semantics follow Nova, except: RESIZE and MOVE have no confirm/revert step,
so they end in the state they started from (`RESIZED` is never produced; a
completed RESIZE gives the server the new `type_id` and that type's `spec`,
and a server resized while powered off stays off); LOCK and UNLOCK have no items; a failed CREATE, RESIZE, MOVE or TERMINATE
leaves the server in `ERROR` (but a RESIZE or MOVE that fails in PREPARING,
before the server was touched: no room, a live MOVE the hypervisor refuses,
leaves it as it was, as Nova's NoValidHost does), any other failure restores
the prior state.
A failed CREATE is rolled back: the server is in `ERROR` on no compute node, no
hypervisor holds it, and only TERMINATE (and LOCK, UNLOCK) may start; the other
actions the table allows from `ERROR` get 409.

| Action | From | While running | Completed (virt / power) | Aborted | Items | Arguments |
|---|---|---|---|---|---|---|
""")
for r in TRANSITIONS:
    w("| {} | {} | {} | {} / {} | {} | {} | {} |\n".format(
        r["action"], states(r["from_virt_states"]), r["virt_state_while_running"], r["virt_state_on_completed"],
        r["power_state_on_completed"] or "-", r["virt_state_on_aborted"], ", ".join(r["items"]) or "(none)", args(r)))

w("""
Item actions per task action:

""")
for r in TRANSITIONS:
    w("- {}: {}\n".format(r["action"], ", ".join(r["items"]) or "no items (completes when created)"))

# ---------------------------------------------------------------- not yet
w("""
# Group Not yet implemented

Every route of the contract (`../shared/spec/vnext-api.md`) is served and
documented above. What the contract asks for beyond them and the code does not
do yet:

- Nothing: every action runs on the fake driver's nodes and on libvirt
  nodes (real QEMU guests, live MOVE included between the nodes of a
  live-migration group). On libvirt nodes UPDATE_PASSWORD needs
  qemu-guest-agent in the guest (see docs/architecture.md).
""")

# ---------------------------------------------------------------- differences
w("""
# Group Differences from the 2014 proposal

The proposal's API Blueprint (2014) is the wire contract: where its examples
or schemas show a shape, this API answers in that shape, and
`tests/api/proposal.rs` asserts it route by route (status, top-level type,
collection keys, required fields and their types, headers, JSON-Home relation
and variable names). Where the proposal is silent, contradicts itself or has a
typo, the contract digest decides; what differs besides is listed here, each
with its reason. Additions (more fields, more links, more routes, `Location`
headers) do not break the proposal's clients and are only named.

## Deliberate differences

- **Task items keep `started_at: null` while `WAITING`.** The proposal's
  schema marks `started_at` required, yet an item that has not started has
  no start time, and inventing one (say `created_at`) would make `since`
  (items started after a time) and progress displays lie. The proposal's own
  example shows the same convention for `ended_at: null` on an open item.
- **`placement_id` may be `null`** for one kind of server only: launched
  without a placement, with no compute node able to take it (its CREATE is
  `ABORTED`, the server in `ERROR`), it was never in any placement. Every
  other server shows the placement it was asked for or, without one, the
  placement of the node the scheduler chose.
- **`template_id` is `null` for a server launched without one.** The
  proposal's servers always name their template; this API lets a launch
  leave it out for drivers that need none (the fake driver).
- **`shares` of a type seen by others than its owner and admins is
  `{"users": [], "projects": []}`.** Who else may use a type is the owner's
  business (it names other users and projects); the field is always there,
  with the same shape. The proposal shows `{}` for public types.
- **`since` includes the time given** (at or after), where the proposal
  says "after": a client that passes the timestamp of the newest thing it
  has seen gets that thing again rather than missing one created in the
  same microsecond.
- **Server list default filters apply only when no state filter is named.**
  The proposal defaults `virt_state` to `ACTIVE` and `power_state` to
  `RUNNING` independently; then `?virt_state=STOPPED` would find nothing,
  since a stopped server is never `RUNNING`. Naming either filter applies
  exactly the ones named; `ANY` (an addition) drops a filter, so
  `?virt_state=ANY` lists every server.
- **`power_state` is `SHUTDOWN` until the hypervisor first reports the
  server** (Nova's NOSTATE while `BUILDING`, and after a failed launch),
  since the proposal's enum has no "no state" value and requires the field
  and the `HEAD` header.
- **JSON-Home `href-vars` point at schema properties** (e.g.
  `/schemas/server#/properties/id`, query parameters
  `/schemas/query#/properties/limit`) instead of the proposal's
  `param/<name>`, which names nothing a client can fetch. Query templates
  use RFC 6570 (`/placements{?limit,marker,tag,parent_placement}`); the
  proposal's split strings (`"/placements" "?{limit,...}"`, `?(lines)`) are
  not valid JSON. `rel/schemas` has an `href`, as it has no variables.
  `rel/project_server` and `rel/project_servers` use `/projects/` (the
  proposal's `/project/` is a typo, redirected with `308`).
- **Schemas are JSON Schema draft 2020-12** with `required` arrays, where the
  proposal used draft-03 `"required": true` on each property; the response
  schemas forbid unknown fields and list every field they require (task item
  actions are an enum). The proposal's `application/json+schema` is read as
  `application/schema+json`.
- **`networking.interfaces` is a list** of `{name, ip4, ip6, mac}` (as the
  proposal's schema says), not an object keyed by interface name (as its
  example shows); **`properties` is an object** (its examples); both as the
  contract digest decides.
- **Timestamps are RFC 3339 in UTC with `Z`** and microseconds
  (`2026-01-01T00:00:00.000000Z`); the proposal's examples mix forms
  (`2014-03-02T23:20:19`, no zone).
- **The console log is `text/plain; charset=utf-8`**; the proposal writes
  `plain/text`, which is no media type.
- **The proposal's typos are read as the contract digest says**:
  `/project/`, `/server/`, `/servers_types`, `/servers_tasks/` are
  `/projects/`, `/servers/`, `/server_types`, `/server_tasks/` (the typos
  get `308`); `root_disk_db` is `root_disk_gb`; `%{rand_num)5d` and
  `%(rand_name)d` are `%(rand_num)5d`; a placement's `children` link is
  `/placements?parent_placement={id}` (the proposal's
  `/placements/parent_placement={id}` is no route).
- **Errors** have one shape, `{"error": {"code", "title", "message",
  "field"}}` (`/schemas/error`); the proposal names statuses only. An action
  that is invalid in the server's state is `409` (the proposal does not say).

## Additions

- Fields: the launch answer's `hostname`; a server's `type_id`, `locked`; a
  task's `updated_at`, `error` and its arguments; a placement's
  `parent_placement_ids`; a project's `id`; JSON-Home's `api_version`.
- Links: `tags` and `shares` of a type, `rel/server` of a task and a
  console, `self` of an item (`/server_tasks/{server_task_id}/items/{server_task_item_id}`,
  a route of its own) and of a console, `rel/server_task` of an item.
- Routes: `GET /servers/{server_id}/diagnostics` (a TODO of the proposal's
  gap analysis), one task item, the tag and share routes named in JSON-Home.
- Query parameters: `changes_since` (what changed since, to poll), `tag` on
  server lists, `ANY` for the state filters.
- Schemas: `server_launch`, `server_patch`, `server_console`, `diagnostics`,
  `query`, `error` and the request schemas, beside the proposal's seven.
- Headers: `Location` on `201` and task `202` answers,
  `X-OpenStack-Request-ID`, `X-OpenStack-Compute-API-Version`.
- `PUT .../tags` also takes `{"tags": [...]}`; paths spelled as in the
  proposal (`/servers_tasks/`, `/servers_types`, `/project/`, `/server/`) get
  `308` to the canonical path.
""")

open(OUT, "w").write("".join(doc_parts))
print("wrote", OUT)
