import { barChart } from './charts.ts';
import type { LabResults } from './results.ts';

interface Section {
  title: string;
  claim: string;
  verdict: string;
  header: string[];
  rows: Array<Array<string | number>>;
  /** What the HTML report draws. */
  charts: Array<Parameters<typeof barChart>[0]>;
}

/** "median (min to max)" over repeated runs, or the one value. */
function spread(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return sorted.length === 1 || sorted[0] === sorted.at(-1)
    ? String(median)
    : `${median} (${sorted[0]} to ${sorted.at(-1)})`;
}

/** The report's sections, from the results: one per experiment that ran. */
function sections(results: LabResults): Section[] {
  const out: Section[] = [];
  if (results.crash) {
    const all = results.crash;
    const runsOf = (prefix: string) => all.filter((r) => r.system.startsWith(prefix)).flatMap((r) => r.runs);
    const statelessKept = runsOf('stateless').every((r) => r.sessionsLost === 0 && r.cartLinesLost === 0);
    const statefulLost = runsOf('stateful').every((r) => r.sessionsLost > 0);
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    out.push({
      title: 'Crash: one of three servers SIGKILLed',
      claim:
        'The articles: a stateless server can die without losing anyone\u2019s session; a stateful one takes its users\u2019 sessions with it.',
      verdict:
        statelessKept && statefulLost
          ? 'Confirmed: the stateless systems lost no session and no cart line in any run; the stateful one lost the killed server\u2019s share.'
          : `Not as claimed here: stateless lost ${runsOf('stateless')
              .map((r) => r.sessionsLost)
              .join('/')} sessions, stateful ${runsOf('stateful')
              .map((r) => r.sessionsLost)
              .join('/')}.`,
      header: ['system', 'runs', 'users', 'sessions lost', 'cart lines lost', 'failed requests', 'recovery ms'],
      rows: all.map(({ system, runs }) => [
        system,
        runs.length,
        runs[0]!.users,
        spread(runs.map((r) => r.sessionsLost)),
        `${spread(runs.map((r) => r.cartLinesLost))} of ${runs[0]!.cartLinesBefore}`,
        spread(runs.map((r) => r.failedRequests)),
        spread(runs.map((r) => r.recoveryMs)),
      ]),
      charts: [
        {
          title: 'Sessions lost when one of three servers is SIGKILLed (median)',
          axis: '% of users',
          values: all.map(({ system, runs }) => ({
            label: system,
            value: (100 * median(runs.map((r) => r.sessionsLost))) / runs[0]!.users,
          })),
        },
        {
          title: 'Cart lines lost (median)',
          axis: '% of cart lines',
          values: all.map(({ system, runs }) => ({
            label: system,
            value: (100 * median(runs.map((r) => r.cartLinesLost))) / runs[0]!.cartLinesBefore,
          })),
        },
      ],
    });
  }
  return out;
}

const machineLine = (results: LabResults) =>
  `${results.machine.cores} cores (${results.machine.cpu}), node ${results.machine.node}; started ${results.startedAt}${results.quick ? '; --quick (a smoke test, not a measurement)' : ''}.`;

export function renderMarkdown(results: LabResults): string {
  const lines = ['# statewise lab report', '', machineLine(results), ''];
  for (const skipped of results.skipped) lines.push(`- Skipped: ${skipped}`);
  for (const section of sections(results)) {
    lines.push(`## ${section.title}`, '', section.claim, '', `**${section.verdict}**`, '');
    lines.push(`| ${section.header.join(' | ')} |`, `|${section.header.map(() => '---').join('|')}|`);
    for (const row of section.rows) lines.push(`| ${row.join(' | ')} |`);
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

const escape = (text: string | number) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A self-contained page: charts as inline SVG; no script, no stylesheet or font from the network. */
export async function renderHtml(results: LabResults): Promise<string> {
  const parts = await Promise.all(
    sections(results).map(async (s) => ({ s, charts: await Promise.all(s.charts.map(barChart)) })),
  );
  const body = parts
    .map(
      ({
        s,
        charts,
      }) => `<section><h2>${escape(s.title)}</h2><p>${escape(s.claim)}</p><p><strong>${escape(s.verdict)}</strong></p>
${charts.map((svg) => `<figure>${svg}</figure>`).join('\n')}
<table><thead><tr>${s.header.map((h) => `<th>${escape(h)}</th>`).join('')}</tr></thead>
<tbody>${s.rows.map((r) => `<tr>${r.map((c) => `<td>${escape(c)}</td>`).join('')}</tr>`).join('\n')}</tbody></table></section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>statewise lab report</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}td:first-child,th:first-child{text-align:left}</style>
</head><body><h1>statewise lab report</h1><p>${escape(machineLine(results))}</p>
${results.skipped.map((s) => `<p>Skipped: ${escape(s)}</p>`).join('\n')}
${body}
</body></html>
`;
}
