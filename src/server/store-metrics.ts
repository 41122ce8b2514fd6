import { Counter, Histogram, type Metric } from 'prom-client';
import type { StoreObserver } from '../state/timed-store.ts';
import type { StoreKind } from '../state/types.ts';

export interface StoreMetrics {
  /** Given to timedStore: records each operation. */
  readonly observe: StoreObserver;
  /** For the metrics plugin's registry. */
  readonly metrics: Metric[];
}

/**
 * The session-state store's operations, by backend and operation: how long each took, and how
 * many failed. Made before the metrics plugin's registry (the store opens first) and registered
 * there.
 */
export function storeMetrics(backend: StoreKind): StoreMetrics {
  const duration = new Histogram({
    name: 'statewise_store_operation_duration_seconds',
    help: 'Session-state operations that went to the shared store (Redis or PostgreSQL; not near-cache hits, not the memory store), by backend and operation',
    labelNames: ['backend', 'operation'],
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5],
    registers: [],
  });
  const failures = new Counter({
    name: 'statewise_store_operation_failures_total',
    help: 'Session-state store operations that failed (the store unreachable, a timeout), by backend and operation',
    labelNames: ['backend', 'operation'],
    registers: [],
  });
  // One labelled child per operation, made once: prom-client checks the labels on every call given an object.
  const children = new Map<string, ReturnType<typeof duration.labels>>();
  return {
    observe(operation, seconds, failed) {
      let child = children.get(operation);
      if (!child) children.set(operation, (child = duration.labels({ backend, operation })));
      child.observe(seconds);
      if (failed) failures.inc({ backend, operation });
    },
    metrics: [duration, failures],
  };
}
