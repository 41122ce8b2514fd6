import type { AppError } from '../../kernel/errors.ts';
import { noServerUp, pinNotUp, pinnedUnavailable, unsafeToRepeat, upstreamTimedOut } from '../error-replies.ts';
import type { ExternalBalancerConfig } from './config-types.ts';

/** An answer's JSON, single-quoted for HAProxy (nothing inside is interpreted; ids and messages hold no quote). */
const body = (error: AppError) => `'${JSON.stringify(error.toBody())}'`;

/**
 * An HAProxy 2.6 configuration for the app servers: the same routing as the embedded balancer
 * (round robin, or a sticky sw_server cookie in stateful mode; the pin header wins), health checks
 * on /readyz, keep-alive on both sides, a failed connection retried on another server.
 */
export function haproxyConfig(config: ExternalBalancerConfig): string {
  const sticky = config.policy === 'sticky';
  const servers = config.servers.map(
    (s) =>
      `  server ${s.id} ${s.address} check inter ${config.healthIntervalMs} fall 2 rise 1${sticky ? ` cookie ${s.id}` : ''}`,
  );
  const pin = 'req.hdr(x-statewise-server)';
  // HAProxy would send a request pinned to a down server to another one: the contract says 503.
  const pinsDown = config.servers.map(
    (s) =>
      `  http-request return status 503 content-type application/json string ${body(pinnedUnavailable(s.id))} if { ${pin} -m str ${s.id} } !{ srv_is_up(app/${s.id}) }`,
  );
  const pins = config.servers.map((s) => `  use-server ${s.id} if { ${pin} -m str ${s.id} }`);
  const ids = config.servers.map((s) => s.id).join(' ');
  const unknownPin = `  http-request return status 503 content-type application/json string ${body(pinNotUp())} if { ${pin} -m found } !{ ${pin} -m len 0 }${ids ? ` !{ ${pin} -m str ${ids} }` : ''}`;
  const control = config.control;
  // A prefix itself, or below it: /_cluster and /_cluster/servers, not /_clusterish.
  const controlPaths = control?.prefixes.map((p) => `^${p.replace(/[^A-Za-z0-9/_-]/g, '')}(/|$)`).join(' ');
  return [
    'global',
    ...(config.processes ? [`  nbthread ${config.processes}`] : []),
    '  maxconn 4096',
    '',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout http-keep-alive 60s',
    // Without it a check times out after `inter`: a short interval on a busy machine marks live servers down.
    '  timeout check 2s',
    // A WebSocket tunnel lives as long as its client.
    '  timeout tunnel 1h',
    // One more try, on another server, when the connection failed before any answer. HAProxy
    // retries only what is safe (idempotent methods) unless the request never left.
    '  retries 1',
    '  option redispatch 1',
    '  retry-on conn-failure empty-response',
    // HAProxy's own answers in the contract's JSON shape, as the embedded balancer gives them.
    `  http-error status 503 content-type application/json hdr retry-after 1 string ${body(noServerUp())}`,
    `  http-error status 502 content-type application/json string ${body(unsafeToRepeat())}`,
    `  http-error status 504 content-type application/json string ${body(upstreamTimedOut())}`,
    '',
    'frontend statewise',
    `  bind ${config.listen}`,
    '  option forwardfor',
    '  http-request set-header X-Forwarded-Proto http',
    '  http-request set-header X-Forwarded-Host %[req.hdr(host)]',
    ...(control ? [`  use_backend control if { path -m reg ${controlPaths} }`] : []),
    '  default_backend app',
    '',
    ...(control ? ['backend control', `  server control ${control.address}`, ''] : []),
    'backend app',
    '  balance roundrobin',
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    ...(sticky ? ['  cookie sw_server insert indirect nocache httponly attr SameSite=Lax'] : []),
    unknownPin,
    ...pinsDown,
    ...pins,
    ...servers,
    '',
  ].join('\n');
}
