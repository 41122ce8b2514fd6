import type { BalancePolicy } from '../policies.ts';

/** What a config for HAProxy or nginx is generated from. */
export interface ExternalBalancerConfig {
  /** host:port to bind, e.g. 127.0.0.1:8080 */
  listen: string;
  policy: BalancePolicy;
  servers: ReadonlyArray<{ id: string; address: string }>;
  /** @default 500 */
  healthIntervalMs: number;
  /** HAProxy threads / nginx worker processes. @default one per core (the binary's own default) */
  processes?: number;
  /**
   * The supervisor's control routes (/_cluster, /metrics), served by its own process at this
   * host:port: the balancer sends those paths there, with X-Forwarded-For, never to an app server.
   */
  control?: { address: string; prefixes: readonly string[] };
  /** nginx: a folder of its own for the pid and temp files (it must not touch /var). */
  prefix?: string;
}
