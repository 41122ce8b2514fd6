import type { AppError } from '../../kernel/errors.ts';
import { bodyTooLarge, pinNotUp, unsafeToRepeat, upstreamTimedOut } from '../error-replies.ts';
import type { ExternalBalancerConfig } from './config-types.ts';

/** Largest request body, as the embedded balancer's default. */
const BODY_LIMIT = 1024 * 1024;

/** `return <status> '<json>'`: nginx would read a backslash, a quote or a `$` in it, and none occurs. */
function answer(error: AppError): string {
  const json = JSON.stringify(error.toBody());
  if (/[\\'$]/.test(json)) throw new Error(`not quotable for nginx: ${json}`);
  return `return ${error.status} '${json}';`;
}

/**
 * An nginx 1.22 configuration for the app servers. Open-source nginx has no active health checks
 * and no `sticky`: a server is taken out after a failed connection (passive, max_fails) and stateful
 * mode hashes the sw_server cookie instead (`hash ... consistent`), so a user stays on one server
 * while it lives. nginx gives that cookie itself to a client that has none: a random key (the
 * request id), not a server's name, since the hash picks the server. The pin header picks a
 * server through a map.
 */
export function nginxConfig(config: ExternalBalancerConfig): string {
  const sticky = config.policy === 'sticky';
  // An upstream block may not be empty: with no server up, one that refuses, so clients get a 502.
  const members =
    config.servers.length > 0
      ? config.servers.map((s) => `    server ${s.address} max_fails=1 fail_timeout=2s;`)
      : ['    server 127.0.0.1:1 down;'];
  const control = config.control;
  const controlPaths = control?.prefixes.map((p) => p.replace(/[^A-Za-z0-9/_-]/g, '')).join('|');
  const pins = config.servers.map((s) => `    ${JSON.stringify(s.id)} ${s.address};`);
  return [
    ...(config.prefix ? [`pid ${config.prefix}/nginx.pid;`] : []),
    `worker_processes ${config.processes ?? 'auto'};`,
    'error_log stderr warn;',
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    ...(config.prefix
      ? ['client_body_temp_path', 'proxy_temp_path', 'fastcgi_temp_path', 'uwsgi_temp_path', 'scgi_temp_path'].map(
          (d) => `  ${d} ${config.prefix}/${d.replace('_path', '')};`,
        )
      : []),
    '  map $http_upgrade $connection_upgrade { default upgrade; "" ""; }',
    // A variable proxy_pass names an upstream group first: `app` unless the pin header names a
    // server; an id that is not one of them maps to nothing, answered 503 below.
    '  map $http_x_statewise_server $backend {',
    '    "" app;',
    '    default "";',
    ...pins,
    '  }',
    // Without the cookie the hash key is empty and nginx falls back to round robin: every request
    // of a new client could land elsewhere. So the first answer sets one, and later requests hash it.
    ...(sticky
      ? [
          '  map $cookie_sw_server $sticky_key { "" $request_id; default $cookie_sw_server; }',
          '  map $cookie_sw_server $sticky_set_cookie {',
          '    "" "sw_server=$request_id; Path=/; HttpOnly; SameSite=Lax";',
          '    default "";',
          '  }',
        ]
      : []),
    '  upstream app {',
    ...(sticky ? ['    hash $sticky_key consistent;'] : []),
    ...members,
    '    keepalive 64;',
    '  }',
    '  server {',
    `    listen ${config.listen};`,
    `    client_max_body_size ${BODY_LIMIT};`,
    // nginx's own answers in the contract's JSON shape, as the embedded balancer gives them. A 502
    // of a pinned request is its server refusing: 503 server_unavailable, as the contract says.
    '    default_type application/json;',
    '    error_page 502 = @bad_gateway;',
    '    error_page 504 = @gateway_timeout;',
    '    error_page 413 = @too_large;',
    `    location @bad_gateway { if ($http_x_statewise_server) { ${answer(pinNotUp())} } ${answer(unsafeToRepeat())} }`,
    `    location @gateway_timeout { ${answer(upstreamTimedOut())} }`,
    `    location @too_large { ${answer(bodyTooLarge(BODY_LIMIT))} }`,
    // Inherited by every location below.
    '    proxy_http_version 1.1;',
    '    proxy_set_header Host $http_host;',
    '    proxy_set_header Upgrade $http_upgrade;',
    '    proxy_set_header Connection $connection_upgrade;',
    '    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    '    proxy_set_header X-Forwarded-Proto $scheme;',
    '    proxy_set_header X-Forwarded-Host $http_host;',
    '    proxy_read_timeout 1h;',
    // The control routes; their event stream must not wait in a buffer.
    ...(control
      ? [
          `    location ~ ^(${controlPaths})(/|$) {`,
          `      proxy_pass http://${control.address};`,
          '      proxy_buffering off;',
          '    }',
        ]
      : []),
    '    location / {',
    `      if ($backend = "") { ${answer(pinNotUp())} }`,
    // A failed connection moves to the next server; nginx never repeats a non-idempotent request.
    '      proxy_next_upstream error timeout;',
    '      proxy_next_upstream_tries 2;',
    '      proxy_pass http://$backend;',
    // An empty value sends no header: only a client without the cookie gets one.
    ...(sticky ? ['      add_header Set-Cookie $sticky_set_cookie always;'] : []),
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}
