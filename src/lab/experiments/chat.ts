import { setTimeout as delay } from 'node:timers/promises';
import type { Message } from '../../realtime/client.ts';
import { repeatEach, runsOf, type SystemRuns, type Experiment, type Section } from '../experiment.ts';
import type { LabInfrastructure } from '../infrastructure.ts';
import { startLabCluster, type LabSystem } from '../lab-cluster.ts';
import { systemsToRun } from '../quick-systems.ts';
import { PIN_HEADER, SignedInClient } from '../signed-in-client.ts';
import { median, percentile, spread } from '../stats.ts';
import { until } from '../until.ts';
import { labChatClient, type LabChatClient } from '../ws-client.ts';

/** One conversation in its own room: everyone sends, everyone listens; with or without a SIGKILL. */
export interface ChatPhase {
  kill: boolean;
  members: number;
  /** Sends started, acknowledged, and the room's history (PostgreSQL) at the end. */
  sent: number;
  acked: number;
  stored: number;
  /** Acknowledged messages missing from the history. */
  lostFromHistory: number;
  /** Members whose session died with the killed server (they could not reconnect). */
  signedOut: number;
  /** Each stored message to each member still signed in (its own excepted), and what arrived. */
  expected: number;
  delivered: number;
  /** The same, only where the sender's server is not the receiver's. */
  crossExpected: number;
  crossDelivered: number;
  /** Send to receipt, ms, receivers on another server than the sender's, and on the same one. */
  crossP50: number | null;
  crossP99: number | null;
  sameP50: number | null;
  sameP99: number | null;
}

export interface ChatRun {
  system: string;
  servers: number;
  calm: ChatPhase;
  killed: ChatPhase;
}

interface Member {
  username: string;
  chat: LabChatClient;
  /** room -> seqs received. */
  received: Map<string, Set<number>>;
}

/** A message not received this long after the last acknowledgement counts as not delivered. */
const DELIVERY_WINDOW_MS = 2_000;
/** Sends still unacknowledged this long after the last one are counted as such. */
const ACK_WINDOW_MS = 15_000;

const sizes = (quick: boolean) =>
  quick
    ? { servers: 2, perServer: 2, messages: 8, paceMs: 80 }
    : { servers: 3, perServer: 4, messages: 30, paceMs: 100 };

/** The room's history, every page (the truth: what PostgreSQL kept). */
async function history(owner: SignedInClient, room: string): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const page = await owner.attempt((signal) =>
      owner.api.GET('/api/chat/rooms/{id}/messages', {
        params: { path: { id: room }, query: { after: String(all.at(-1)?.seq ?? 0), limit: '200' } },
        headers: { [PIN_HEADER]: 's1' },
        signal,
      }),
    );
    if (page.status !== 200 || !page.data) throw new Error(`history: ${page.status} ${JSON.stringify(page.failure)}`);
    const { messages } = page.data;
    all.push(...messages);
    if (messages.length < 200) return all;
  }
}

/**
 * One phase: every member sends `messages` to the room, paced under the frame limit, without
 * waiting for acks; with `kill`, s2 is SIGKILLed half way (and stays down). Then the history is
 * read, and each member still signed in is given the delivery window to have it all.
 */
async function phase(
  owner: SignedInClient,
  members: Member[],
  room: string,
  plan: ReturnType<typeof sizes>,
  kill: (() => Promise<void>) | undefined,
): Promise<ChatPhase> {
  const sentAt = new Map<string, { at: number; server: string | null }>();
  const latencies = { cross: [] as number[], same: [] as number[] };
  const stops = members.map((member) =>
    member.chat.client.on('message', (r, message) => {
      if (r !== room || message.author === member.username) return;
      const sent = sentAt.get(message.clientMsgId);
      if (!sent) return;
      (sent.server === member.chat.server ? latencies.same : latencies.cross).push(performance.now() - sent.at);
    }),
  );
  let acked = 0;
  let pending = 0;
  const ackedIds = new Set<string>();
  const half = (members.length * plan.messages) / 2;
  const killing = kill && until(() => acked >= half, 'half the messages acknowledged').then(kill);
  await Promise.all(
    members.map(async (member, i) => {
      for (let k = 0; k < plan.messages && !member.chat.signedOut; k++) {
        const id = `${member.username}-${room.slice(0, 8)}-${k}`;
        sentAt.set(id, { at: performance.now(), server: member.chat.server });
        pending++;
        member.chat.client
          .send(room, `${member.username} #${k}`, id)
          .then(
            () => void (acked++, ackedIds.add(id)),
            () => {},
          )
          .finally(() => pending--);
        await delay(plan.paceMs + (i % 3)); // Pacing under the frame limit, not a synchronisation.
      }
    }),
  );
  await killing;
  const lastSend = performance.now();
  await until(() => pending === 0 || performance.now() - lastSend > ACK_WINDOW_MS, 'the sends to settle');

  const stored = await history(owner, room);
  const live = members.filter((m) => !m.chat.signedOut);
  const missing = (m: Member) => stored.filter((s) => s.author !== m.username && !m.received.get(room)!.has(s.seq));
  const windowFrom = performance.now();
  await until(
    () => live.every((m) => missing(m).length === 0) || performance.now() - windowFrom > DELIVERY_WINDOW_MS,
    'the delivery window',
  );
  for (const stop of stops) stop();

  const serverOf = new Map(members.map((m) => [m.username, m.chat.server]));
  let expected = 0;
  let delivered = 0;
  let crossExpected = 0;
  let crossDelivered = 0;
  for (const m of live) {
    for (const s of stored) {
      if (s.author === m.username) continue;
      const got = m.received.get(room)!.has(s.seq) ? 1 : 0;
      expected++;
      delivered += got;
      if ((sentAt.get(s.clientMsgId)?.server ?? serverOf.get(s.author)) !== m.chat.server) {
        crossExpected++;
        crossDelivered += got;
      }
    }
  }
  const storedIds = new Set(stored.map((s) => s.clientMsgId));
  const quantile = (xs: number[], p: number) => (xs.length === 0 ? null : Math.round(percentile(xs, p) * 10) / 10);
  return {
    kill: kill !== undefined,
    members: members.length,
    sent: sentAt.size,
    acked,
    stored: stored.length,
    lostFromHistory: [...ackedIds].filter((id) => !storedIds.has(id)).length,
    signedOut: members.length - live.length,
    expected,
    delivered,
    crossExpected,
    crossDelivered,
    crossP50: quantile(latencies.cross, 0.5),
    crossP99: quantile(latencies.cross, 0.99),
    sameP50: quantile(latencies.same, 0.5),
    sameP99: quantile(latencies.same, 0.99),
  };
}

/**
 * One run: members spread over the servers (each signed up and connected there), two rooms; a
 * calm conversation in the first, then one in the second during which s2 is SIGKILLed.
 */
export async function chatOnce(system: LabSystem, infra: LabInfrastructure, quick: boolean): Promise<ChatRun> {
  const plan = sizes(quick);
  const cluster = await startLabCluster(system, infra, plan.servers);
  const members: Member[] = [];
  try {
    const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
    const owner = await SignedInClient.register(cluster.url, `chat_${run}_owner`, 's1');
    const rooms: string[] = [];
    for (const name of ['calm', 'killed']) {
      const created = await owner.attempt((signal) =>
        owner.api.POST('/api/chat/rooms', {
          body: { name: `lab ${name} ${run}` },
          headers: { [PIN_HEADER]: 's1' },
          signal,
        }),
      );
      if (created.status !== 201 || !created.data)
        throw new Error(`room: ${created.status} ${JSON.stringify(created.failure)}`);
      rooms.push(created.data.room.id);
    }
    const count = plan.servers * plan.perServer;
    members.push(
      ...(await Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const server = `s${(i % plan.servers) + 1}`;
          const user = await SignedInClient.register(cluster.url, `chat_${run}_${i}`, server);
          const member: Member = {
            username: user.username,
            chat: labChatClient(cluster.url, user.cookie, server),
            received: new Map(rooms.map((r) => [r, new Set<number>()])),
          };
          member.chat.client.on('message', (room, message) => void member.received.get(room)?.add(message.seq));
          return member;
        }),
      )),
    );
    const subscribed = new Map<Member, Set<string>>(members.map((m) => [m, new Set()]));
    for (const member of members) {
      member.chat.client.on('subscribed', (room) => void subscribed.get(member)!.add(room));
      member.chat.client.connect();
      for (const room of rooms) member.chat.client.subscribe(room, 0);
    }
    await until(
      () => members.every((m) => m.chat.server !== null && subscribed.get(m)!.size === rooms.length),
      'every member connected and subscribed',
    );
    const calm = await phase(owner, members, rooms[0]!, plan, undefined);
    const killed = await phase(owner, members, rooms[1]!, plan, () => cluster.supervisor.server('s2')!.kill());
    return { system: system.name, servers: plan.servers, calm, killed };
  } finally {
    for (const member of members) member.chat.client.close();
    await cluster.stop();
  }
}

export type ChatResults = SystemRuns<ChatRun>[];

const pct = (part: number, whole: number) => (whole === 0 ? 100 : (100 * part) / whole);
const ms = (values: Array<number | null>) => {
  const known = values.filter((v): v is number => v !== null);
  return known.length === 0 ? 'none arrived' : spread(known, 1);
};

export const chat: Experiment<ChatResults> = {
  name: 'chat',
  steps: (ctx) => systemsToRun(ctx).length * ctx.repeat,
  run: (ctx) => repeatEach(ctx, 'chat', systemsToRun(ctx), (system) => chatOnce(system, ctx.infra, ctx.quick)),
  report(all): Section[] {
    const of = (prefix: string) => runsOf(all, prefix);
    const stateless = of('stateless');
    const stateful = of('stateful');
    const crossPct = (runs: ChatRun[]) =>
      runs.map((r) => Math.round(pct(r.calm.crossDelivered, r.calm.crossExpected))).join('/');
    const statelessAll = stateless.every((r) => r.calm.crossDelivered === r.calm.crossExpected);
    const statefulNone = stateful.every((r) => r.calm.crossDelivered < r.calm.crossExpected);
    const p99s = stateless.map((r) => r.calm.crossP99).filter((v): v is number => v !== null);
    const noHistoryLost = all.every((r) =>
      r.runs.every((run) => run.calm.lostFromHistory + run.killed.lostFromHistory === 0),
    );
    const statelessKept = stateless.every((r) => r.killed.delivered === r.killed.expected && r.killed.signedOut === 0);
    const deliveryVerdict =
      statelessAll && statefulNone
        ? `Confirmed: the stateless systems delivered every message to users on other servers (p99 ${p99s.length ? `${Math.max(...p99s).toFixed(1)} ms at most` : 'n/a'}); the stateful one delivered ${crossPct(stateful)}% of them live: a message reaches only its sender\u2019s server.`
        : `Not as claimed: cross-server delivery was ${crossPct(stateless)}% stateless, ${crossPct(stateful)}% stateful.`;
    const lossVerdict = `${noHistoryLost ? 'No acknowledged message was missing from the history in any system' : 'Acknowledged messages were MISSING from the history'}; ${
      statelessKept
        ? 'the stateless systems\u2019 clients all reconnected and caught up on everything'
        : 'some stateless client missed messages'
    }${
      stateful.length
        ? `; in the stateful one ${stateful.map((r) => r.killed.signedOut).join('/')} members were signed out with s2 and the rest received ${stateful.map((r) => Math.round(pct(r.killed.delivered, r.killed.expected))).join('/')}% of the conversation.`
        : '.'
    }`;
    const phaseRow = (system: string, runs: ChatRun[], key: 'calm' | 'killed') => {
      const p = runs.map((r) => r[key]);
      return [
        system,
        key === 'calm' ? 'no kill' : 's2 SIGKILLed half way',
        runs.length,
        `${p[0]!.members} on ${runs[0]!.servers}`,
        `${spread(p.map((x) => x.acked))} of ${spread(p.map((x) => x.sent))}`,
        spread(p.map((x) => x.stored)),
        spread(p.map((x) => x.lostFromHistory)),
        spread(p.map((x) => x.signedOut)),
        `${spread(p.map((x) => pct(x.delivered, x.expected)))}%`,
      ];
    };
    return [
      {
        title: 'Chat: delivery between servers',
        claim:
          'The articles: with stateful servers a chat message reaches only the users connected to the same server; stateless servers pass it on through a shared bus (Redis or PostgreSQL), at the price of a hop.',
        verdict: deliveryVerdict,
        header: [
          'system',
          'runs',
          'delivered to other servers',
          'p50 ms other server',
          'p99 ms other server',
          'p50 ms same server',
          'p99 ms same server',
        ],
        rows: all.map(({ system, runs }) => [
          system,
          runs.length,
          `${spread(runs.map((r) => pct(r.calm.crossDelivered, r.calm.crossExpected)))}%`,
          ms(runs.map((r) => r.calm.crossP50)),
          ms(runs.map((r) => r.calm.crossP99)),
          ms(runs.map((r) => r.calm.sameP50)),
          ms(runs.map((r) => r.calm.sameP99)),
        ]),
        charts: [
          {
            title: 'Messages delivered to users on another server (median)',
            axis: '% of messages',
            values: all.map(({ system, runs }) => ({
              label: system,
              value: median(runs.map((r) => pct(r.calm.crossDelivered, r.calm.crossExpected))),
            })),
          },
          {
            title: 'Delivery latency, send to receipt (median of runs)',
            axis: 'ms',
            values: all.flatMap(({ system, runs }) =>
              (
                [
                  ['p50 same server', (r: ChatRun) => r.calm.sameP50],
                  ['p99 same server', (r: ChatRun) => r.calm.sameP99],
                  ['p50 other server', (r: ChatRun) => r.calm.crossP50],
                  ['p99 other server', (r: ChatRun) => r.calm.crossP99],
                ] as const
              ).map(([series, f]) => ({
                label: system,
                series,
                value: median(runs.map((r) => f(r) ?? 0)),
              })),
            ),
          },
        ],
        notes: [
          'Every member sends to one room, about 10 messages a second, without waiting for acknowledgements; each member listens on the server it signed up on. Latency is from the send call to the receipt, both in the lab process.',
          `A message that has not arrived ${DELIVERY_WINDOW_MS / 1000} s after the last acknowledgement counts as not delivered; a stateless system never needs the window.`,
          'The load generator, the balancer and the servers share 2 cores with other work: latencies are noisy, read them as orders of magnitude.',
        ],
      },
      {
        title: 'Chat: a server SIGKILLed mid-conversation',
        claim:
          'The articles: a stateless chat survives a crash (clients reconnect elsewhere and catch up from the history); a stateful one loses the crashed server\u2019s users and what only it knew.',
        verdict: lossVerdict,
        header: [
          'system',
          'conversation',
          'runs',
          'members on servers',
          'acknowledged of sent',
          'in history',
          'acknowledged but lost',
          'signed out',
          'delivered to members still signed in',
        ],
        rows: all.flatMap(({ system, runs }) => [phaseRow(system, runs, 'calm'), phaseRow(system, runs, 'killed')]),
        charts: [
          {
            title: 'Conversation delivered to the members still signed in (median)',
            axis: '% of messages',
            values: all.flatMap(({ system, runs }) => [
              {
                label: system,
                series: 'no kill',
                value: median(runs.map((r) => pct(r.calm.delivered, r.calm.expected))),
              },
              {
                label: system,
                series: 's2 SIGKILLed',
                value: median(runs.map((r) => pct(r.killed.delivered, r.killed.expected))),
              },
            ]),
          },
        ],
        notes: [
          'The history is PostgreSQL\u2019s in every mode: a message acknowledged is stored, whoever crashes. What a crash costs is delivery: stateless clients reconnect through the balancer, subscribe again with their last seq and get what they missed; a stateful server\u2019s users lose their session with it (the reconnect is refused), and the others never hear the other servers\u2019 messages live.',
          'Sends that were never acknowledged are those of members signed out by the crash.',
        ],
      },
    ];
  },
};
