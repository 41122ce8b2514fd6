/**
 * The served OpenAPI document (GET /docs/json) against the app that serves it, in process
 * (app.inject): every route the app registers is in it with an operationId, a summary, tags,
 * `security` and a 4xx answer, and nothing else is; operationIds are unique and verb-first; the
 * Error component documents every code of src/kernel/errors.ts; the shared components are there and
 * all used; and the answers real requests get (status and body) are ones the document lists.
 * The same for the supervisor's control API (`/_cluster`, tag `cluster`), which the document
 * covers too: its real routes on a real balancer, driving a fake cluster (fake-cluster.ts).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import Fastify from 'fastify';
import { request } from 'undici';
import { createBalancer, type Balancer } from '../../src/balancer/balancer.ts';
import { ERROR_STATUS } from '../../src/kernel/errors.ts';
import { CLOSE, MAX_FRAME_BYTES, clientFrames, serverFrames } from '../../src/realtime/frames.ts';
import { refsIn } from '../../src/server/openapi/document.ts';
import { CONTROL_PREFIXES, controlApi } from '../../src/supervisor/control-api.ts';
import { fakeCluster } from './fake-cluster.ts';
import { startApp, type InjectResult, type TestServer } from '../support/app.ts';
import { newUsername, PASSWORD } from '../security/backends.ts';

type Json = Record<string, any>;

/** Routes the app serves that the document leaves out on purpose (`schema.hide`), each with why. */
const HIDDEN = new Map([
  ['GET /docs/json', 'the document itself'],
  // The origin's GET /metrics is the supervisor's (documented, tag `cluster`), not an app server's.
  ['GET /metrics', "an app server's own, for a Prometheus scraper on its loopback port only"],
]);
/** The admin token of the control API under test. */
const ADMIN_TOKEN = 'openapi-test-admin-token-0123456789';
/** Routes of the docs page (the UI and its assets), when it is there: hidden too. */
const isDocsPage = (path: string) => path === '/docs' || path.startsWith('/docs/');

/** The first word of every operationId. */
const VERBS = [
  'get',
  'list',
  'create',
  'add',
  'set',
  'remove',
  'delete',
  'send',
  'mark',
  'open',
  'register',
  'login',
  'logout',
  'refresh',
  'deposit',
  'withdraw',
  'transfer',
  'kill',
  'stop',
  'start',
  'stream',
  // rollingRestart: the name the contract and the dashboard give the operation.
  'rolling',
];
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'trace'];

/**
 * The routes of `app.printRoutes({ commonPrefix: false })`, e.g. `GET /api/orders/{id}`: a tree
 * whose lines add their text to their parent's path, with the methods in parentheses.
 */
function registeredRoutes(tree: string): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([│ ├└─]*)(\S.*?) \(([A-Z, ]+)\)$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    const path = (stack[depth - 1] ?? '') + match[2]!;
    stack[depth] = path;
    for (const method of match[3]!.split(', ')) {
      // Fastify adds a HEAD route for every GET; the document shows the GET.
      if (method !== 'HEAD') routes.push(`${method} ${path.replace(/:(\w+)/g, '{$1}')}`);
    }
  }
  return routes;
}

/** The routes a Fastify instance registers (the control API's, here). */
async function routesOf(plugin: ReturnType<typeof controlApi>): Promise<string[]> {
  const app = Fastify();
  await app.register(plugin);
  await app.ready();
  try {
    return registeredRoutes(app.printRoutes({ commonPrefix: false }));
  } finally {
    await app.close();
  }
}

function operations(doc: Json): Array<{ key: string; path: string; method: string; op: Json }> {
  return Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json)
      .filter(([method]) => HTTP_METHODS.includes(method))
      .map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, path, method, op: op as Json })),
  );
}

describe('the OpenAPI document', () => {
  let apps: Awaited<ReturnType<typeof startApp>>;
  let server: TestServer;
  let doc: Json;
  let routes: string[];
  /** The control API's routes, and a balancer that serves them (the supervisor's, on a fake cluster). */
  let controlRoutes: string[];
  let balancer: Balancer;
  const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
  (addFormatsModule as unknown as (a: Ajv) => void)(ajv);
  const validators = new Map<string, ValidateFunction>();
  /** What the requests below got: `METHOD template status`. */
  const observed = new Set<string>();
  /** What the control API drives here: its event log is read below. */
  let fake: ReturnType<typeof fakeCluster>;

  before(async () => {
    apps = await startApp({ store: 'memory' });
    server = apps.server;
    const answer = await server.app.inject({ method: 'GET', url: '/docs/json' });
    assert.equal(answer.statusCode, 200);
    doc = answer.json();
    ajv.addSchema(doc, 'openapi.json');
    routes = registeredRoutes(server.app.printRoutes({ commonPrefix: false }));
    fake = fakeCluster(['s1', 's2', 's3']);
    const control = () => controlApi(fake, { adminToken: ADMIN_TOKEN, listenHost: '127.0.0.1', log: () => {} });
    controlRoutes = await routesOf(control());
    balancer = await createBalancer({
      port: 0,
      host: '127.0.0.1',
      policy: 'round-robin',
      logger: false,
      control: { plugin: control(), prefixes: CONTROL_PREFIXES },
    });
  });
  after(async () => {
    await balancer?.close();
    await apps?.close();
  });

  it('lists every route the app registers, each with operationId, summary, tags, security and a 4xx', () => {
    assert.ok(routes.length >= 30, `found ${routes.length} routes in printRoutes()`);
    const documented = new Map(operations(doc).map((o) => [o.key, o.op]));
    for (const route of routes) {
      const path = route.slice(route.indexOf(' ') + 1);
      if (HIDDEN.has(route) || isDocsPage(path)) {
        // Unless the supervisor answers that path on the public origin (GET /metrics).
        const shown = documented.get(route);
        assert.ok(
          !shown || (controlRoutes.includes(route) && shown.tags.includes('cluster')),
          `${route} is hidden (${HIDDEN.get(route) ?? 'the docs page'})`,
        );
        continue;
      }
      const op = documented.get(route);
      assert.ok(op, `${route} is registered but not in /docs/json`);
      assert.match(op.operationId ?? '', /^[a-z][A-Za-z0-9]*$/, `${route} has an operationId`);
      assert.ok(typeof op.summary === 'string' && op.summary.length > 0, `${route} has a summary`);
      assert.ok(Array.isArray(op.tags) && op.tags.length > 0, `${route} has tags`);
      assert.ok(Array.isArray(op.security), `${route} says who may call it (security)`);
      const statuses = Object.keys(op.responses ?? {}).map(Number);
      assert.ok(
        statuses.some((s) => s >= 400 && s < 500),
        `${route} lists a 4xx answer: ${statuses.join(', ')}`,
      );
    }
    for (const key of documented.keys()) {
      assert.ok(routes.includes(key) || controlRoutes.includes(key), `${key} is documented but not registered`);
    }
  });

  it('documents every route of the control API (/_cluster), answered by the supervisor on the same origin', () => {
    const expected = [
      'GET /_cluster',
      'GET /_cluster/events',
      'POST /_cluster/servers/{id}/kill',
      'POST /_cluster/servers/{id}/stop',
      'POST /_cluster/servers/{id}/start',
      'POST /_cluster/servers',
      'DELETE /_cluster/servers/{id}',
      'POST /_cluster/rolling-restart',
      'POST /_cluster/mode',
      'GET /metrics',
    ];
    assert.deepEqual([...controlRoutes].sort(), [...expected].sort(), 'the control API registers these routes');
    const tagged = operations(doc).filter((o) => (o.op.tags as string[]).includes('cluster'));
    assert.deepEqual(
      tagged.map((o) => o.key).sort(),
      [...expected].sort(),
      'and the document has each, tagged cluster',
    );
    const tag = (doc.tags as Json[]).find((t) => t.name === 'cluster');
    assert.match(String(tag?.description), /supervisor at the balancer's address/, 'the tag says who answers');
    for (const { key, op } of tagged) {
      assert.match(op.operationId ?? '', /^[a-z][A-Za-z0-9]*$/, `${key} has an operationId`);
      assert.ok(typeof op.summary === 'string' && op.summary.length > 0, `${key} has a summary`);
      assert.deepEqual(op.security, [{ adminToken: [] }], `${key} takes the admin token`);
      const statuses = Object.keys(op.responses ?? {}).map(Number);
      assert.ok(
        statuses.some((s) => s >= 200 && s < 300),
        `${key} has a 2xx: ${statuses.join(', ')}`,
      );
      assert.ok(statuses.includes(403), `${key} lists 403 (no access, or another origin)`);
      if (key.includes('{id}')) {
        assert.ok(statuses.includes(404), `${key} lists 404 (no such server)`);
        assert.deepEqual(
          (op.parameters as Json[]).map((p) => [p.name, p.in, p.required]),
          [['id', 'path', true]],
          `${key} documents its id`,
        );
      }
    }
    const ids = new Map(tagged.map((o) => [o.key, o.op.operationId]));
    assert.equal(ids.get('GET /_cluster'), 'getCluster');
    assert.equal(ids.get('GET /_cluster/events'), 'streamClusterEvents');
    assert.equal(ids.get('POST /_cluster/servers/{id}/kill'), 'killServer');
    assert.equal(ids.get('POST /_cluster/rolling-restart'), 'rollingRestart');
    assert.equal(ids.get('POST /_cluster/mode'), 'setMode');
    const switchBody = doc.paths['/_cluster/mode'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(switchBody.properties.mode.enum, ['stateless', 'stateful'], 'the switch documents its body');
    const events = resolveResponse(doc.paths['/_cluster/events'].get.responses['200']);
    assert.ok(events.content['text/event-stream'], 'the event stream is text/event-stream');
    const view = doc.components.schemas.ClusterServer as Json;
    for (const field of ['id', 'pid', 'status', 'startedAt', 'requests', 'connections', 'rssBytes', 'sessionsInMemory'])
      assert.ok(view.required.includes(field), `ClusterServer.${field} is required (the dashboard reads it)`);
    assert.deepEqual(view.properties.status.enum, ['starting', 'up', 'draining', 'down']);
  });

  it('documents every WebSocket frame as a component, discriminated by type, and the close codes', () => {
    const schemas = doc.components.schemas as Json;
    for (const [union, frames] of [
      ['ClientFrame', clientFrames],
      ['ServerFrame', serverFrames],
    ] as const) {
      const types = Object.keys(frames);
      assert.equal(schemas[union].discriminator.propertyName, 'type', `${union} is discriminated by type`);
      assert.deepEqual(Object.keys(schemas[union].discriminator.mapping), types, `${union} maps every type`);
      assert.deepEqual(
        schemas[union].oneOf.map((m: Json) => m.$ref),
        types.map((t) => `#/components/schemas/${union}_${t}`),
        `${union} is oneOf every frame`,
      );
      for (const type of types) {
        assert.deepEqual(schemas[`${union}_${type}`]?.properties.type.enum, [type], `${union}_${type} has its type`);
      }
    }
    const socket = doc.paths['/ws'].get as Json;
    assert.deepEqual(socket['x-websocket-frames'], {
      client: { $ref: '#/components/schemas/ClientFrame' },
      server: { $ref: '#/components/schemas/ServerFrame' },
    });
    assert.match(socket.description, /`ClientFrame`/);
    assert.match(socket.description, /`ServerFrame`/);
    for (const code of [1001, 1009, ...Object.values(CLOSE)]) {
      assert.ok(String(socket.description).includes(String(code)), `the /ws description names close code ${code}`);
    }
    assert.ok(String(socket.description).includes(String(MAX_FRAME_BYTES)), 'and the largest frame');
  });

  it('gives every request body a realistic example that fits its schema', () => {
    const withBody = operations(doc).filter((o) => o.op.requestBody);
    assert.ok(withBody.length >= 13, `${withBody.length} operations take a body`);
    for (const { key, op, path, method } of withBody) {
      const media = op.requestBody.content['application/json'] as Json;
      assert.ok(media, `${key} takes JSON`);
      assert.ok(media.example !== undefined, `${key} has an example body`);
      const pointer = `openapi.json#/paths/${path.replaceAll('~', '~0').replaceAll('/', '~1')}/${method}`;
      const validate = ajv.compile({ $ref: `${pointer}/requestBody/content/application~1json/schema` });
      assert.ok(
        validate(media.example),
        `${key}: the example fits the body schema: ${ajv.errorsText(validate.errors)}`,
      );
    }
  });

  it('has unique, verb-first operationIds', () => {
    const ids = operations(doc).map((o) => o.op.operationId as string);
    assert.equal(new Set(ids).size, ids.length, `duplicates: ${ids.filter((id, i) => ids.indexOf(id) !== i)}`);
    for (const id of ids) {
      const verb = /^[a-z]+/.exec(id)?.[0];
      assert.ok(VERBS.includes(verb ?? ''), `${id} starts with a verb (${VERBS.join(', ')})`);
    }
  });

  it('documents every error code in the one Error component', () => {
    const error = doc.components.schemas.Error as Json;
    assert.ok(error, 'components.schemas.Error');
    const description = String(error.description ?? '');
    assert.match(description, /RFC 9457/, 'says why the shape is not RFC 9457 problem details');
    const codeSchema = error.properties.error.properties.code as Json;
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      assert.ok(codeSchema.enum.includes(code), `${code} is in the code enum`);
      assert.ok(description.includes(`| \`${code}\` | ${status} |`), `${code} (${status}) is described`);
    }
    assert.deepEqual([...codeSchema.enum].sort(), Object.keys(ERROR_STATUS).sort(), 'and no other code');
    // Every error answer of every operation is that one shape.
    for (const { key, op } of operations(doc)) {
      for (const [status, answer] of Object.entries(op.responses as Json)) {
        if (Number(status) < 400) continue;
        const resolved = resolveResponse(answer);
        assert.equal(
          resolved.content?.['application/json']?.schema?.$ref,
          '#/components/schemas/Error',
          `${key} ${status}`,
        );
      }
    }
  });

  it('declares the security schemes, the Idempotency-Key parameter, servers, and no unused component', () => {
    const { securitySchemes, parameters } = doc.components as Json;
    assert.deepEqual(Object.keys(securitySchemes).sort(), ['adminToken', 'bearer', 'session']);
    assert.equal(securitySchemes.session.in, 'cookie');
    assert.equal(securitySchemes.bearer.scheme, 'bearer');
    assert.equal(securitySchemes.adminToken.scheme, 'bearer');
    assert.ok(Array.isArray(doc.servers) && doc.servers.length > 0, 'servers');
    assert.equal(parameters.IdempotencyKey.name, 'Idempotency-Key');
    assert.equal(parameters.IdempotencyKey.in, 'header');
    const ik = { $ref: '#/components/parameters/IdempotencyKey' };
    const idempotent = [
      'POST /api/bank/deposit',
      'POST /api/bank/withdraw',
      'POST /api/bank/transfer',
      'POST /api/orders',
    ];
    for (const { key, op } of operations(doc)) {
      for (const requirement of op.security as Json[]) {
        for (const scheme of Object.keys(requirement)) assert.ok(securitySchemes[scheme], `${key}: ${scheme}`);
      }
      const params = (op.parameters ?? []) as Json[];
      assert.equal(
        params.some((p) => p.$ref === ik.$ref),
        idempotent.includes(key),
        `${key} ${idempotent.includes(key) ? 'takes' : 'does not take'} the shared Idempotency-Key`,
      );
      assert.ok(!params.some((p) => String(p.name).toLowerCase() === 'idempotency-key'), `${key}: not inline`);
    }
    const used = refsIn({ ...doc, components: { ...doc.components, securitySchemes: undefined } });
    for (const kind of ['schemas', 'responses', 'parameters']) {
      for (const name of Object.keys(doc.components[kind] ?? {})) {
        assert.ok(used.has(`#/components/${kind}/${name}`), `components.${kind}.${name} is used`);
      }
    }
    const schemesUsed = new Set(operations(doc).flatMap((o) => (o.op.security as Json[]).flatMap(Object.keys)));
    assert.deepEqual([...schemesUsed].sort(), ['adminToken', 'bearer', 'session'], 'every security scheme is used');
  });

  /** The response object of an answer, following a `$ref` to components.responses. */
  function resolveResponse(answer: Json): Json {
    const ref = answer.$ref as string | undefined;
    return ref ? doc.components.responses[ref.replace('#/components/responses/', '')] : answer;
  }

  /** The documented operation of a request, by method and path (path templates matched segment by segment). */
  function operationOf(method: string, url: string): { key: string; pointer: string; op: Json } {
    const path = url.split('?')[0]!;
    for (const { key, path: template, method: m, op } of operations(doc)) {
      if (m !== method.toLowerCase()) continue;
      const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      if (!pattern.test(path)) continue;
      const pointer = `openapi.json#/paths/${template.replaceAll('~', '~0').replaceAll('/', '~1')}/${m}`;
      return { key, pointer, op };
    }
    assert.fail(`${method} ${path} is in no operation of the document`);
  }

  /** Checks an answer against the document: its status is listed, and a JSON body fits that status's schema. */
  function conforms(method: string, url: string, answer: InjectResult): InjectResult {
    const { key, pointer, op } = operationOf(method, url);
    const documented = op.responses[String(answer.status)] as Json | undefined;
    assert.ok(documented, `${key} answered ${answer.status}, which it does not list: ${JSON.stringify(answer.body)}`);
    observed.add(`${key} ${answer.status}`);
    const response = resolveResponse(documented);
    const schema = response.content?.['application/json']?.schema;
    if (schema && String(answer.headers['content-type'] ?? '').includes('json')) {
      const at = documented.$ref
        ? `openapi.json#/components/responses/${documented.$ref.replace('#/components/responses/', '')}`
        : `${pointer}/responses/${answer.status}`;
      const ref = `${at}/content/application~1json/schema`;
      let validate = validators.get(ref);
      if (!validate) validators.set(ref, (validate = ajv.compile({ $ref: ref })));
      assert.ok(
        validate(answer.body),
        `${key} ${answer.status}: the body does not fit the documented schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(answer.body)}`,
      );
    }
    return answer;
  }

  it("answers the control API's requests as documented (status, and JSON bodies by their schemas)", async () => {
    const base = balancer.url;
    const call = async (
      method: 'GET' | 'POST' | 'DELETE',
      url: string,
      headers: Record<string, string> = {},
      payload?: string,
    ) => {
      const response = await request(`${base}${url}`, {
        method,
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          ...(payload ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: payload,
      });
      const type = String(response.headers['content-type'] ?? '');
      const text = await response.body.text();
      const body = type.includes('json') ? JSON.parse(text) : text;
      return conforms(method, url, {
        status: response.statusCode,
        headers: response.headers as never,
        body,
        servedBy: undefined,
      });
    };

    const view = await call('GET', '/_cluster');
    assert.equal(view.status, 200);
    assert.deepEqual(
      view.body.servers.map((s: Json) => s.id),
      ['s1', 's2', 's3'],
    );
    const killed = await call('POST', '/_cluster/servers/s1/kill');
    assert.equal(killed.status, 202);
    assert.equal(killed.body.server.status, 'down');
    assert.equal(killed.body.server.pid, null, 'a null the schema must allow');
    assert.equal((await call('GET', '/_cluster')).body.servers[0].pid, null);
    // An action on a server in a state it does not apply to: 409, and nothing logged as done.
    const logged = fake.events.recent.length;
    const again = await call('POST', '/_cluster/servers/s1/kill');
    assert.equal(again.status, 409);
    assert.match(again.body.error.message, /s1 is down already/);
    assert.equal((await call('POST', '/_cluster/servers/s1/stop')).status, 409);
    assert.equal(fake.events.recent.length, logged, 'no event for a refused action');
    assert.equal((await call('POST', '/_cluster/servers/s1/start')).status, 202);
    assert.equal((await call('POST', '/_cluster/servers/s1/start')).status, 409, 'running already');
    assert.equal((await call('POST', '/_cluster/servers/s2/stop')).status, 202);
    assert.equal((await call('POST', '/_cluster/servers/s2/stop')).status, 409);
    const added = await call('POST', '/_cluster/servers');
    assert.equal(added.status, 201);
    assert.equal(added.body.server.id, 's4');
    assert.equal((await call('DELETE', '/_cluster/servers/s4')).status, 202);
    const restart = await call('POST', '/_cluster/rolling-restart');
    assert.equal(restart.status, 202);
    assert.equal((await call('POST', '/_cluster/rolling-restart')).status, 409);
    const switched = await call('POST', '/_cluster/mode', {}, JSON.stringify({ mode: 'stateless' }));
    assert.equal(switched.status, 202);
    assert.deepEqual(switched.body, { mode: 'stateless', store: 'postgres', servers: ['s1', 's3'], sessionsLost: 6 });
    assert.equal((await call('POST', '/_cluster/mode', {}, JSON.stringify({ mode: 'stateful' }))).status, 409);
    for (const bad of ['{"mode":"chaotic"}', '{}', '{"mode":"stateless","extra":1}', '[]', '{'])
      assert.equal((await call('POST', '/_cluster/mode', {}, bad)).status, 400, bad);
    assert.equal((await call('POST', '/_cluster/mode')).status, 400, 'no body');
    assert.equal(
      (await call('POST', '/_cluster/mode', { 'content-type': 'text/plain' }, 'stateless')).status,
      415,
      'not JSON',
    );
    assert.equal((await call('POST', '/_cluster/servers/s9/kill')).status, 404);
    assert.equal((await call('DELETE', '/_cluster/servers/s9')).status, 404);
    assert.equal((await call('POST', `/_cluster/servers/${'x'.repeat(80)}/stop`)).status, 400);
    assert.equal((await call('POST', `/_cluster/servers/${'x'.repeat(120)}/start`)).status, 414);
    assert.equal((await call('GET', '/_cluster', { authorization: 'Bearer nope', host: 'example.com' })).status, 403);
    assert.equal(
      (await call('POST', '/_cluster/servers/s3/kill', { origin: 'http://evil.example' })).status,
      403,
      'another origin',
    );
    const metrics = await call('GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.body), /^# HELP /m, 'Prometheus text, not JSON');

    // The event stream: its first `view` event is a ClusterView.
    const abort = new AbortController();
    const stream = await request(`${base}/_cluster/events`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      signal: abort.signal,
    });
    conforms('GET', '/_cluster/events', {
      status: stream.statusCode,
      headers: stream.headers as never,
      body: null,
      servedBy: undefined,
    });
    assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
    let text = '';
    for await (const chunk of stream.body) {
      text += String(chunk);
      if (/event: view\ndata: .*\n\n/.test(text)) break;
    }
    abort.abort();
    const data = JSON.parse(/event: view\ndata: (.*)\n\n/.exec(text)![1]!);
    const validate = ajv.compile({ $ref: 'openapi.json#/components/schemas/ClusterView' });
    assert.ok(validate(data), `the stream's view is a ClusterView: ${ajv.errorsText(validate.errors)}`);
  });

  it('lists the status of every answer the requests below get, and their bodies fit its schemas', async () => {
    const visitor = server.client();
    const call = async (
      client: typeof visitor,
      method: string,
      url: string,
      options: { json?: unknown; body?: string; headers?: Record<string, string> } = {},
    ) => conforms(method, url, await client.request(method, url, options));

    // Signed out.
    assert.equal((await call(visitor, 'GET', '/api/me')).status, 401);
    assert.equal((await call(visitor, 'GET', '/web/session')).status, 200);
    assert.equal((await call(visitor, 'GET', '/healthz')).status, 200);
    assert.equal((await call(visitor, 'GET', '/readyz')).status, 200);
    assert.equal((await call(visitor, 'GET', '/.well-known/jwks.json')).status, 200);
    assert.equal((await call(visitor, 'GET', '/api/cart')).status, 200);
    const menu = await call(visitor, 'GET', '/api/menu');
    assert.equal(menu.status, 200);
    const notModified = await call(visitor, 'GET', '/api/menu', {
      headers: { 'if-none-match': String(menu.headers.etag) },
    });
    assert.equal(notModified.status, 304);
    const item = (menu.body.items as Array<{ id: string }>)[0]!.id;
    assert.equal((await call(visitor, 'POST', '/api/cart/items', { json: { itemId: item, qty: 2 } })).status, 200);
    assert.equal(
      (await call(visitor, 'POST', '/api/cart/items', { json: { itemId: 'no-such-pizza', qty: 1 } })).status,
      404,
    );
    assert.equal((await call(visitor, 'POST', '/api/cart/items', { json: { itemId: item, qty: 0 } })).status, 400);
    assert.equal((await call(visitor, 'GET', '/api/orders')).status, 401);

    // Bad requests.
    assert.equal((await call(visitor, 'POST', '/api/auth/register', { json: { username: 'x' } })).status, 400);
    assert.equal(
      (
        await call(visitor, 'POST', '/api/auth/login', {
          body: '{"username":',
          headers: { 'content-type': 'application/json' },
        })
      ).status,
      400,
    );
    assert.equal(
      (await call(visitor, 'POST', '/api/auth/login', { body: 'hi', headers: { 'content-type': 'text/plain' } }))
        .status,
      415,
    );
    const huge = JSON.stringify({ username: 'x'.repeat(100_000), password: 'y' });
    assert.equal(
      (await call(visitor, 'POST', '/api/auth/login', { body: huge, headers: { 'content-type': 'application/json' } }))
        .status,
      413,
    );
    assert.equal(
      (
        await call(visitor, 'POST', '/api/auth/login', {
          json: { username: 'nobody-here', password: 'wrong password' },
        })
      ).status,
      401,
    );

    // Signed in with the session cookie.
    const alice = server.client();
    const username = newUsername('oa');
    assert.equal(
      (await call(alice, 'POST', '/api/auth/register', { json: { username, password: PASSWORD } })).status,
      201,
    );
    assert.equal(
      (await call(alice, 'POST', '/api/auth/register', { json: { username, password: PASSWORD } })).status,
      409,
    );
    assert.equal((await call(alice, 'GET', '/api/me')).status, 200);
    assert.equal((await call(alice, 'GET', '/web/session')).status, 200);
    assert.equal((await call(alice, 'GET', '/api/auth/sessions')).status, 200);
    assert.equal((await call(alice, 'DELETE', `/api/auth/sessions/${randomUUID()}`)).status, 404);
    assert.equal(
      (await call(alice, 'POST', '/api/auth/logout', { headers: { 'sec-fetch-site': 'cross-site' } })).status,
      403,
    );
    assert.equal((await call(alice, 'GET', '/api/bank/account')).status, 200);
    assert.equal((await call(alice, 'GET', '/api/bank/transactions')).status, 200);
    assert.equal((await call(alice, 'POST', '/api/bank/withdraw', { json: { amountCents: 1 } })).status, 400);
    const key = randomUUID();
    const withdraw = (amountCents: number) =>
      call(alice, 'POST', '/api/bank/withdraw', { json: { amountCents }, headers: { 'idempotency-key': key } });
    assert.equal((await withdraw(100_000_000)).status, 409);
    assert.equal((await withdraw(5)).status, 422);
    assert.equal(
      (
        await call(alice, 'POST', '/api/bank/deposit', {
          json: { amountCents: 250 },
          headers: { 'idempotency-key': randomUUID() },
        })
      ).status,
      200,
    );
    const transfer = { toUsername: 'nobody-here', amountCents: 1 };
    assert.equal(
      (
        await call(alice, 'POST', '/api/bank/transfer', {
          json: transfer,
          headers: { 'idempotency-key': randomUUID() },
        })
      ).status,
      404,
    );
    assert.equal((await call(alice, 'POST', '/api/cart/items', { json: { itemId: item, qty: 1 } })).status, 200);
    assert.equal((await call(alice, 'PUT', `/api/cart/items/${item}`, { json: { qty: 3 } })).status, 200);
    assert.equal((await call(alice, 'DELETE', `/api/cart/items/${item}`)).status, 200);
    assert.equal((await call(alice, 'POST', '/api/cart/items', { json: { itemId: item, qty: 1 } })).status, 200);
    const order = await call(alice, 'POST', '/api/orders', { json: {}, headers: { 'idempotency-key': randomUUID() } });
    assert.equal(order.status, 202);
    assert.equal((await call(alice, 'GET', `/api/orders/${order.body.order.id}`)).status, 200);
    assert.equal((await call(alice, 'GET', `/api/orders/${randomUUID()}`)).status, 404);
    assert.equal((await call(alice, 'GET', '/api/orders')).status, 200);
    const roomName = `openapi-${randomUUID()}`;
    const room = await call(alice, 'POST', '/api/chat/rooms', { json: { name: roomName } });
    assert.equal(room.status, 201);
    assert.equal((await call(alice, 'POST', '/api/chat/rooms', { json: { name: roomName } })).status, 409);
    const roomId = room.body.room.id as string;
    const message = { text: 'hello', clientMsgId: randomUUID() };
    assert.equal((await call(alice, 'POST', `/api/chat/rooms/${roomId}/messages`, { json: message })).status, 201);
    assert.equal((await call(alice, 'GET', `/api/chat/rooms/${roomId}/messages?after=0&limit=10`)).status, 200);
    assert.equal((await call(alice, 'GET', '/api/chat/rooms/not-a-uuid/messages')).status, 400);
    assert.equal((await call(alice, 'POST', `/api/chat/rooms/${roomId}/read`, { json: { seq: 1 } })).status, 204);
    assert.equal((await call(alice, 'GET', '/api/chat/rooms')).status, 200);
    assert.equal((await call(alice, 'GET', '/api/chat/unread')).status, 200);
    assert.equal((await call(alice, 'GET', `/api/chat/rooms/${roomId}/presence`)).status, 200);
    assert.equal((await call(alice, 'GET', '/ws')).status, 426);

    // Bearer tokens.
    const api = server.client();
    const pair = await call(api, 'POST', '/api/auth/token', { json: { username, password: PASSWORD } });
    assert.equal(pair.status, 200);
    const bearer = { authorization: `Bearer ${pair.body.accessToken}` };
    assert.equal((await call(api, 'GET', '/api/me', { headers: bearer })).status, 200);
    assert.equal((await call(api, 'GET', '/api/me', { headers: { authorization: 'Bearer not-a-token' } })).status, 401);
    const refreshed = await call(api, 'POST', '/api/auth/refresh', { json: { refreshToken: pair.body.refreshToken } });
    assert.equal(refreshed.status, 200);
    assert.equal(
      (await call(api, 'POST', '/api/auth/refresh', { json: { refreshToken: pair.body.refreshToken } })).status,
      401,
    );

    // Signing out.
    assert.equal((await call(alice, 'POST', '/api/auth/logout-all')).status, 204);
    assert.equal((await call(alice, 'POST', '/api/auth/logout')).status, 204);

    // The web UI, when this checkout has one.
    if (routes.includes('GET /')) {
      const page = await call(visitor, 'GET', '/');
      assert.equal(page.status, 200);
      const asset = /"(\/assets\/[^"]+)"/.exec(String(page.body))?.[1];
      if (asset) assert.equal((await call(visitor, 'GET', asset)).status, 200);
      assert.equal((await call(visitor, 'GET', '/assets/no-such-file.js')).status, 404);
    }

    const reached = new Set([...observed].map((o) => o.slice(0, o.lastIndexOf(' '))));
    const missed = operations(doc)
      .map((o) => o.key)
      .filter((k) => !reached.has(k));
    assert.deepEqual(missed, [], 'every operation got at least one request');
  });
});
