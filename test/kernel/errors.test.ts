/**
 * The error codes are a closed, checked set, and anything thrown becomes one of them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError, ERROR_STATUS } from '../../src/kernel/errors.ts';
import { storeUnreachable, toAppError } from '../../src/kernel/http-errors.ts';

describe('error codes', () => {
  it('are snake_case and map to a fitting status', () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      assert.match(code, /^[a-z]+(_[a-z]+)*$/, code);
      assert.ok(
        [400, 401, 403, 404, 405, 409, 413, 414, 415, 422, 426, 429, 500, 502, 503, 504].includes(status),
        `${code}: ${status}`,
      );
    }
  });

  it('cover every status the contract names', () => {
    const statuses = new Set(Object.values(ERROR_STATUS));
    for (const status of [400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 503])
      assert.ok(statuses.has(status as never), String(status));
  });

  it('give the contract shape', () => {
    const error = new AppError('rate_limited', 'Too many attempts.', { retryAfterSeconds: 3 });
    assert.deepEqual(error.toBody(), { error: { code: 'rate_limited', message: 'Too many attempts.' } });
    assert.equal(error.status, 429);
    assert.equal(error.retryAfterSeconds, 3);
  });
});

describe('toAppError', () => {
  const fastifyError = (code: string, statusCode: number, extra: object = {}) =>
    Object.assign(new Error('x'), { code, statusCode, ...extra });

  it('maps the framework errors a client can cause to 4xx', () => {
    assert.equal(toAppError(fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413)).code, 'body_too_large');
    assert.equal(toAppError(fastifyError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415)).code, 'unsupported_media_type');
    assert.equal(toAppError(fastifyError('FST_ERR_CTP_EMPTY_JSON_BODY', 400)).code, 'invalid_json');
    assert.equal(
      toAppError(Object.assign(new SyntaxError('Unexpected end of JSON input'), { statusCode: 400 })).code,
      'invalid_json',
    );
    const validation = fastifyError('FST_ERR_VALIDATION', 400, {
      validation: [{ instancePath: '/amountCents', message: 'must be integer', params: {} }],
      validationContext: 'body',
    });
    const mapped = toAppError(validation);
    assert.equal(mapped.code, 'invalid_input');
    assert.equal(mapped.message, 'body.amountCents must be integer.');
  });

  it('hides unexpected errors behind a generic 500', () => {
    const mapped = toAppError(new TypeError('cannot read properties of undefined (secret detail)'));
    assert.equal(mapped.code, 'internal_error');
    assert.equal(mapped.status, 500);
    assert.doesNotMatch(mapped.message, /secret/);
  });

  it('passes AppErrors through unchanged', () => {
    const error = new AppError('insufficient_funds', 'Not enough money.');
    assert.equal(toAppError(error), error);
  });
});

describe('storeUnreachable', () => {
  it('tells a store that cannot be reached (503) from a bug (500)', () => {
    const unreachable = [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      Object.assign(new Error('the database system is shutting down'), { code: '57P01', severity: 'FATAL' }),
      Object.assign(new Error('connection failure'), { code: '08006' }),
      new Error('Connection is closed.'),
      Object.assign(new Error('Reached the max retries per request limit'), { name: 'MaxRetriesPerRequestError' }),
    ];
    for (const error of unreachable) {
      assert.equal(storeUnreachable(error), true, error.message);
      const mapped = toAppError(error);
      assert.equal(mapped.code, 'unavailable');
      assert.equal(mapped.retryAfterSeconds, 1);
    }
    for (const error of [
      new Error('boom'),
      new TypeError('x is undefined'),
      Object.assign(new Error('dup'), { code: '23505' }),
    ]) {
      assert.equal(storeUnreachable(error), false, error.message);
      assert.equal(toAppError(error).code, 'internal_error');
    }
  });
});
