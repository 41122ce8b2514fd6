/**
 * What the control API drives, without processes: servers that change status when told, a view
 * shaped like the supervisor's (stateful mode, so `sessionsInMemory` is a number), and a rolling
 * restart that stays "running" once started (the next one is a 409). For tests of the control API's
 * real routes, schemas and serialization (src/supervisor/control-api.ts).
 */
import { AppError } from '../../src/kernel/errors.ts';
import { ClusterEvents } from '../../src/supervisor/cluster-events.ts';
import type { ClusterControl, ControlledServer } from '../../src/supervisor/control-api.ts';
import type { ServerStatus, ServerView } from '../../src/supervisor/managed-server.ts';

class FakeServer implements ControlledServer {
  #status: ServerStatus = 'up';
  #pid: number | null;
  #startedAt: string | null = new Date().toISOString();

  constructor(
    readonly id: string,
    private readonly port: number,
  ) {
    this.#pid = port;
  }

  view(): ServerView {
    const running = this.#status !== 'down';
    return {
      id: this.id,
      pid: this.#pid,
      status: this.#status,
      startedAt: this.#startedAt,
      port: running ? this.port : null,
    };
  }

  async kill(): Promise<void> {
    this.#status = 'down';
    this.#pid = null;
  }

  async stop(): Promise<void> {
    this.#status = 'down';
    this.#pid = null;
  }

  async start(): Promise<void> {
    this.#status = 'up';
    this.#pid = this.port;
    this.#startedAt = new Date().toISOString();
  }
}

export function fakeCluster(ids: string[]): ClusterControl {
  const servers = new Map(ids.map((id, i) => [id, new FakeServer(id, 41000 + i)]));
  let rolling = false;
  const control: ClusterControl = {
    events: new ClusterEvents(),
    view: () => ({
      mode: 'stateful',
      store: 'memory',
      servers: [...servers.values()].map((server) => {
        const { id, pid, status, startedAt } = server.view();
        const up = status === 'up';
        return {
          id,
          pid,
          status,
          startedAt,
          requests: 7,
          connections: up ? 1 : 0,
          rssBytes: pid === null ? null : 52_000_000,
          sessionsInMemory: up ? 3 : 0,
        };
      }),
    }),
    server: (id) => servers.get(id),
    add: async () => {
      let n = servers.size + 1;
      while (servers.has(`s${n}`)) n++;
      const server = new FakeServer(`s${n}`, 41000 + n);
      servers.set(server.id, server);
      return server;
    },
    rollingRestart: async () => {
      if (rolling) throw new AppError('conflict', 'A rolling restart is running already; GET /_cluster shows it.');
      rolling = true;
      const up = control.view().servers.filter((s) => s.status === 'up');
      return {
        servers: up.map((s) => s.id),
        sessionsAtRisk: up.reduce((sum, s) => sum + (s.sessionsInMemory ?? 0), 0),
        done: Promise.resolve(),
      };
    },
    remove: async (id) => servers.delete(id),
    sessionsHeld: async (ids) =>
      control
        .view()
        .servers.filter((s) => ids.includes(s.id))
        .reduce((sum, s) => sum + (s.sessionsInMemory ?? 0), 0),
    switchMode: async (mode) => {
      if (mode === 'stateful') throw new AppError('conflict', 'The cluster is stateful already.');
      const running = control.view().servers.filter((s) => s.status !== 'down');
      return {
        answer: {
          mode,
          store: 'postgres',
          servers: running.map((s) => s.id),
          sessionsLost: running.reduce((sum, s) => sum + (s.sessionsInMemory ?? 0), 0),
        },
        done: Promise.resolve(),
      };
    },
  };
  return control;
}
