/**
 * Bad input gets a clear 4xx with the contract's JSON error shape and changes nothing; never a 5xx.
 * Sent through the load balancer, as a client would.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { ERROR_STATUS, type ErrorCode } from '../../src/kernel/errors.ts';
import { Browser, type HttpResult } from '../support/http.ts';

/** Every error answer this suite got, for the last test. */
const seen: HttpResult[] = [];

/** A typed answer as the raw ones are (its error body as the body). */
const asResult = ({ response, error }: { response: Response; error?: unknown }): HttpResult => ({
  status: response.status,
  headers: response.headers,
  body: error,
  servedBy: response.headers.get('x-served-by'),
});

function assertError(answer: HttpResult | { response: Response; error?: unknown }, status: number, code?: string) {
  const result = 'response' in answer ? asResult(answer) : answer;
  seen.push(result);
  assert.equal(result.status, status, JSON.stringify(result.body));
  assert.match(result.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(typeof result.body?.error?.code, 'string', 'error.code');
  assert.equal(typeof result.body?.error?.message, 'string', 'error.message');
  assert.ok(result.body.error.message.length > 5, 'a message a person can act on');
  if (code) assert.equal(result.body.error.code, code);
}

describe('bad input through the balancer', () => {
  let cluster: Cluster;
  let client: Browser;
  before(async () => {
    cluster = await startCluster({ servers: 2 });
    client = new Browser(cluster.url);
  });
  after(() => cluster.stop());

  const register = (body: string, contentType = 'application/json') =>
    // raw: bodies and content types the schema refuses, on purpose
    client.request('POST', '/api/auth/register', { body, headers: { 'content-type': contentType } });

  it('malformed JSON is 400 invalid_json', async () => {
    assertError(await register('{"username": "x", '), 400, 'invalid_json');
    assertError(await register('[1, 2'), 400, 'invalid_json');
  });

  it('an empty JSON body is 400', async () => {
    assertError(await register(''), 400);
  });

  it('wrong types and missing fields are 400 invalid_input naming the field', async () => {
    const wrong = await register(JSON.stringify({ username: 5, password: true }));
    assertError(wrong, 400, 'invalid_input');
    assert.match(wrong.body.error.message, /username|password/);
    const missing = await register(JSON.stringify({ username: 'dave' }));
    assertError(missing, 400, 'invalid_input');
    assert.match(missing.body.error.message, /password/);
    assertError(await register('"just a string"'), 400, 'invalid_input');
    assertError(await register('null'), 400);
    assertError(await register(JSON.stringify({ username: 'dave', password: 'long enough pw', admin: true })), 400);
  });

  it('usernames and passwords outside the rules are 400', async () => {
    assertError(await register(JSON.stringify({ username: 'Dave', password: 'long enough pw' })), 400, 'invalid_input');
    assertError(await register(JSON.stringify({ username: 'da', password: 'long enough pw' })), 400, 'invalid_input');
    assertError(await register(JSON.stringify({ username: 'dave', password: 'short' })), 400, 'invalid_input');
    assertError(await register(JSON.stringify({ username: 'dave', password: 'password123' })), 400, 'invalid_input');
  });

  it('an oversized body is 413', async () => {
    const big = JSON.stringify({ username: 'dave', password: 'x'.repeat(100_000) });
    assertError(await register(big), 413, 'body_too_large');
    const huge = JSON.stringify({ username: 'dave', password: 'x'.repeat(3_000_000) });
    assertError(await register(huge), 413, 'body_too_large');
  });

  it('a wrong content type is 415', async () => {
    assertError(await register('username=dave', 'application/x-www-form-urlencoded'), 415, 'unsupported_media_type');
    assertError(await register('hello', 'text/plain'), 415, 'unsupported_media_type');
  });

  it('unknown routes are 404 and known routes with the wrong method are 405', async () => {
    assertError(await client.get('/api/nothing-here'), 404, 'not_found'); // raw: a path outside the API
    assertError(await client.request('GET', '/nope?x=1'), 404, 'not_found');
    const wrongMethod = await client.request('DELETE', '/api/me'); // raw: a method the API does not have
    assertError(wrongMethod, 405, 'method_not_allowed');
    assert.equal(wrongMethod.headers.get('allow'), 'GET, HEAD');
    // raw: a method the API does not have
    assertError(await client.request('PATCH', '/api/auth/login', { json: {} }), 405, 'method_not_allowed');
  });

  it('none of it created an account or a session', async () => {
    const login = await client.api.POST('/api/auth/login', { body: { username: 'dave', password: 'long enough pw' } });
    assertError(login, 401, 'invalid_credentials');
    assertError(await client.api.GET('/api/me'), 401, 'not_authenticated');
    assert.equal(client.cookies.has('sid'), false);
  });

  it('every error came from an app server (X-Served-By), none was a 5xx, each code with its status', async () => {
    assertError(
      // raw: malformed JSON to a method the API does not have
      await client.request('PUT', '/api/me', { body: '{', headers: { 'content-type': 'application/json' } }),
      400,
      'invalid_json',
    );
    assert.ok(seen.length >= 20, `${seen.length} errors seen`);
    for (const result of seen) {
      assert.ok(result.status >= 400 && result.status < 500, `${result.status}`);
      // The balancer's own 413 for a body over its limit is the one answer no app server gives.
      if (result.status !== 413) assert.match(result.servedBy ?? '', /^s\d$/);
      assert.equal(ERROR_STATUS[result.body.error.code as ErrorCode], result.status, result.body.error.code);
    }
  });
});
