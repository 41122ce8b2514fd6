import { drawChart } from './charts.ts';
import type { Section } from './experiment.ts';
import { EXPERIMENTS } from './experiments/index.ts';
import type { LabResults } from './results.ts';

/** The report's sections: each experiment that ran, in the registry's order. */
function sections(results: LabResults): Section[] {
  return EXPERIMENTS.filter((e) => e.name in results.experiments).flatMap((e) =>
    e.report(results.experiments[e.name], { quick: results.quick }),
  );
}

const machineLine = ({ machine, ...results }: LabResults) =>
  `${machine.cores} cores (${machine.cpu}), node ${machine.node}, PostgreSQL ${machine.postgres ?? '?'}, ${machine.redis ? `Redis ${machine.redis}` : 'no Redis'}; started ${results.startedAt}${results.quick ? '; --quick (a smoke test, not a measurement)' : ''}.`;

export function renderMarkdown(results: LabResults): string {
  const lines = ['# statewise lab report', '', machineLine(results), ''];
  for (const skipped of results.skipped) lines.push(`- Skipped: ${skipped}`);
  for (const section of sections(results)) {
    lines.push(`## ${section.title}`, '', section.claim, '', `**${section.verdict}**`, '');
    for (const note of section.notes ?? []) lines.push(`- ${note}`);
    if (section.notes?.length) lines.push('');
    lines.push(`| ${section.header.join(' | ')} |`, `|${section.header.map(() => '---').join('|')}|`);
    for (const row of section.rows) lines.push(`| ${row.join(' | ')} |`);
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

/** For the terminal: each section's table under its title and verdict. */
export function renderSummary(results: LabResults): string {
  const lines: string[] = [];
  for (const section of sections(results)) {
    lines.push('', `${section.title}`, `  ${section.verdict}`);
    const table = [section.header, ...section.rows.map((row) => row.map(String))];
    const widths = section.header.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length)));
    for (const row of table) lines.push(`  ${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}`);
  }
  return lines.join('\n');
}

const escape = (text: string | number) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A self-contained page: charts as inline SVG; no script, no stylesheet or font from the network. */
export async function renderHtml(results: LabResults): Promise<string> {
  const parts = await Promise.all(
    sections(results).map(async (s) => ({ s, charts: await Promise.all(s.charts.map(drawChart)) })),
  );
  const body = parts
    .map(
      ({
        s,
        charts,
      }) => `<section><h2>${escape(s.title)}</h2><p>${escape(s.claim)}</p><p><strong>${escape(s.verdict)}</strong></p>${(s.notes ?? []).map((n) => `<p>${escape(n)}</p>`).join('')}
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
