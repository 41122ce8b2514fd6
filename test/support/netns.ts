/**
 * Several hosts on one machine: each host is a network namespace with one veth pair whose root
 * end is a port of a bridge the run makes, and the root namespace has the bridge's address (.1).
 * A bridge rather than a routed veth pair per host: the hosts reach each other (app servers to
 * PostgreSQL and Redis) without turning on IP forwarding for the whole machine, and a cut host's
 * root end can go down while the route to the subnet stays on the bridge, so its packets are
 * dropped silently instead of following the default route out of the machine.
 *
 * Names carry a prefix and the run's number: namespaces `swp-<run>-<pid>-<host>`, links
 * `swp<run>br` and `swp<run>v<i>` (15 characters at most), the bridge's alias names the owner pid
 * (it is made as `swpt<pid>`, labelled, then renamed: the rename is the lock on the subnet).
 * Whatever a dead run left behind is removed at the next start; a run's own is removed by
 * destroy(), and at exit or SIGTERM/SIGINT when the test never got there.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { atExit } from './at-exit.ts';

const exec = promisify(execFile);
const PREFIX = 'swp';
const NAMESPACE = /^swp-(\d+)-(\d+)-/;
const LINK = /^swp(\d+)(?:br|v\d+)$/;

/** Why the namespaces cannot be made here, or undefined when they can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces and veth pairs need root: run the tests as root';
  try {
    await exec('ip', ['-V']);
  } catch {
    return 'the `ip` command is missing: apt-get install iproute2';
  }
  return undefined;
}

export interface Host {
  /** e.g. 's2' */
  name: string;
  /** The namespace, for `ip netns exec`. */
  ns: string;
  /** Its address on the run's subnet, e.g. 10.213.41.12 */
  address: string;
  /** The root end of its veth pair: down = cut. */
  link: string;
}

export interface Network {
  /** A scratch folder of the run (data of its hosts), removed with the namespaces. */
  dir: string;
  /** The root namespace's address on the subnet (the balancer's source address). */
  gateway: string;
  host(name: string): Promise<Host>;
  /** Spawns `command` inside the host's namespace (own process group, killed at destroy). */
  run(host: Host, command: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** The root end down: every packet to or from the host is dropped, nobody is told. */
  cut(host: Host): Promise<void>;
  heal(host: Host): Promise<void>;
  destroy(): Promise<void>;
}

const ip = async (...args: string[]) => (await exec('ip', args)).stdout;
const ipSync = (...args: string[]) => {
  try {
    return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  } catch {
    return ''; // already gone: teardown goes on
  }
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const namespaces = (): string[] =>
  ipSync('netns', 'list')
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((name) => name.startsWith(`${PREFIX}-`));

const links = (): Array<{ ifname: string; ifalias?: string }> =>
  (JSON.parse(ipSync('-j', 'link', 'show') || '[]') as Array<{ ifname: string; ifalias?: string }>).filter((l) =>
    LINK.test(l.ifname),
  );

/** Kills every process in the namespace, then removes it (synchronous: it also runs at exit). */
function removeNamespaceSync(ns: string): void {
  for (const pid of ipSync('netns', 'pids', ns).split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  ipSync('netns', 'del', ns);
}

const scratch = (run: number, pid: number) => join(tmpdir(), `${PREFIX}-${run}-${pid}`);

/** Everything of a run: its hosts' namespaces, then its links (veth ends, then the bridge), then its folder. */
function teardownSync(run: number): void {
  for (const ns of namespaces()) if (NAMESPACE.exec(ns)?.[1] === String(run)) removeNamespaceSync(ns);
  // Deleting a namespace frees its veth pairs later (asynchronously): delete the root ends now.
  for (const link of links())
    if (link.ifname !== `${PREFIX}${run}br` && LINK.exec(link.ifname)?.[1] === String(run))
      ipSync('link', 'del', link.ifname);
  ipSync('link', 'del', `${PREFIX}${run}br`);
  for (const name of readdirSync(tmpdir())) {
    if (NAMESPACE.exec(`${name}-`)?.[1] === String(run)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

/** Runs whose owner process is gone: a crashed or SIGKILLed test, a run from before a reboot of the runner. */
function sweepStale(): void {
  const dead = new Set<number>();
  for (const ns of namespaces()) {
    const match = NAMESPACE.exec(ns);
    if (match && !alive(Number(match[2]))) dead.add(Number(match[1]));
  }
  const bridges = new Map<number, number | undefined>();
  for (const link of links()) {
    const run = Number(LINK.exec(link.ifname)![1]);
    if (link.ifname.endsWith('br')) bridges.set(run, Number(/pid=(\d+)/.exec(link.ifalias ?? '')?.[1]) || undefined);
  }
  for (const [run, pid] of bridges) if (pid === undefined || !alive(pid)) dead.add(run);
  // A bridge of a run that died while claiming its subnet.
  for (const line of ipSync('-o', 'link', 'show').split('\n')) {
    const pid = new RegExp(`^\\d+: ${PREFIX}t(\\d+)[:@]`).exec(line)?.[1];
    if (pid && !alive(Number(pid))) ipSync('link', 'del', `${PREFIX}t${pid}`);
  }
  for (const name of readdirSync(tmpdir())) {
    const match = NAMESPACE.exec(`${name}-`);
    if (match && !alive(Number(match[2]))) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
  // A veth end without its bridge: its run got halfway through teardown.
  for (const link of links()) {
    const run = Number(LINK.exec(link.ifname)![1]);
    if (!bridges.has(run)) dead.add(run);
  }
  for (const run of dead) teardownSync(run);
}

const live = new Set<number>();
/** Teardown when the test never reaches destroy(): exit, or the runner's SIGTERM on a timeout. */
function teardownLive(): void {
  for (const run of live) teardownSync(run);
  live.clear();
}

const toNumber = (address: string) => address.split('.').reduce((n, part) => n * 256 + Number(part), 0);

/** Whether two IPv4 prefixes (a bare address is a /32) share an address. */
function overlaps(a: string, b: string): boolean {
  const [addressA, bitsA = '32'] = a.split('/');
  const [addressB, bitsB = '32'] = b.split('/');
  const bits = Math.min(Number(bitsA), Number(bitsB));
  const net = (n: number) => Math.floor(n / 2 ** (32 - bits));
  return net(toNumber(addressA!)) === net(toNumber(addressB!));
}

/** Picks a free /24 in 10.213.0.0/16 (its bridge name is the lock) and makes the bridge. */
async function claimRun(): Promise<number> {
  const taken = new Set(links().map((l) => Number(LINK.exec(l.ifname)![1])));
  const routed = (JSON.parse(await ip('-j', '-4', 'route', 'show', 'table', 'all')) as Array<{ dst: string }>)
    .map((r) => r.dst)
    .filter((dst) => dst !== 'default');
  for (let attempt = 0; attempt < 50; attempt++) {
    const run = 1 + Math.floor(Math.random() * 254);
    // Never a subnet the machine routes already (other than by its default route).
    if (taken.has(run) || routed.some((dst) => overlaps(dst, `10.213.${run}.0/24`))) continue;
    // Made under a name of this process, labelled, then renamed: never seen by a sweep unlabelled.
    const temporary = `${PREFIX}t${process.pid}`;
    await ip('link', 'add', 'name', temporary, 'type', 'bridge');
    await ip('link', 'set', temporary, 'alias', `statewise netns pid=${process.pid}`);
    try {
      await ip('link', 'set', temporary, 'name', `${PREFIX}${run}br`);
    } catch {
      await ip('link', 'del', temporary);
      continue; // another run took it meanwhile
    }
    live.add(run);
    return run;
  }
  throw new Error('no free 10.213.x.0/24 for the test network');
}

export async function createNetwork(): Promise<Network> {
  atExit(teardownLive);
  sweepStale();
  const run = await claimRun();
  const bridge = `${PREFIX}${run}br`;
  const gateway = `10.213.${run}.1`;
  const children = new Set<ChildProcess>();
  const hosts: Host[] = [];
  const dir = scratch(run, process.pid);
  mkdirSync(dir, { recursive: true });
  try {
    await ip('addr', 'add', `${gateway}/24`, 'dev', bridge);
    await ip('link', 'set', bridge, 'up');
  } catch (error) {
    teardownSync(run);
    live.delete(run);
    throw error;
  }

  return {
    dir,
    gateway,
    async host(name) {
      const index = hosts.length + 1;
      const host: Host = {
        name,
        ns: `${PREFIX}-${run}-${process.pid}-${name}`,
        address: `10.213.${run}.${10 + index}`,
        link: `${PREFIX}${run}v${index}`,
      };
      hosts.push(host);
      const inside = `${host.link}n`;
      await ip('netns', 'add', host.ns);
      await ip('link', 'add', host.link, 'type', 'veth', 'peer', 'name', inside);
      await ip('link', 'set', inside, 'netns', host.ns);
      await ip('-n', host.ns, 'link', 'set', inside, 'name', 'eth0');
      await ip('-n', host.ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0');
      await ip('-n', host.ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', host.ns, 'link', 'set', 'lo', 'up');
      await ip('link', 'set', host.link, 'master', bridge);
      await ip('link', 'set', host.link, 'up');
      return host;
    },
    run(host, command, args, options = {}) {
      const child = spawn('ip', ['netns', 'exec', host.ns, command, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        ...options,
        // Its own process group: a Ctrl-C meant for the test runner does not reach it first.
        detached: true,
      });
      child.on('error', () => undefined);
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    async cut(host) {
      // The route to the subnet stays on the bridge; the bridge drops what is for this port.
      await ip('link', 'set', host.link, 'down');
    },
    async heal(host) {
      await ip('link', 'set', host.link, 'up');
    },
    async destroy() {
      for (const child of children) {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // exited meanwhile
        }
      }
      teardownSync(run);
      live.delete(run);
    },
  };
}
