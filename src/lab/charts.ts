import { compile, type TopLevelSpec } from 'vega-lite';
import * as vega from 'vega';

export interface ChartSpec {
  title: string;
  /** The quantity's axis title, e.g. "requests/s". */
  axis: string;
  /** One value per label, and per series when there are several (one colour each). */
  values: Array<{ label: string; value: number; series?: string }>;
  /** Bars (the default; grouped when there are series) or lines over the labels in order. */
  kind?: 'bar' | 'line';
  /** The labels' axis title for a line chart, e.g. "servers". */
  labelAxis?: string;
}

/**
 * Labels are drawn whole (0: no limit). Vega cuts them at 180 px (axes) and 160 px (legends) with
 * an ellipsis, by a width it guesses without a canvas: "stateful (server memory, sticky)" was drawn
 * "stateful (server memo…". The chart grows to the left to hold them.
 */
const LABEL_LIMIT = 0;

function specOf(chart: ChartSpec): TopLevelSpec {
  const series = chart.values.some((v) => v.series !== undefined);
  const color = series
    ? { field: 'series', type: 'nominal' as const, title: null, sort: null, legend: { labelLimit: LABEL_LIMIT } }
    : { value: '#3b6ea5' };
  if (chart.kind === 'line') {
    return {
      title: chart.title,
      width: 420,
      data: { values: chart.values },
      mark: { type: 'line', point: true, tooltip: false },
      encoding: {
        x: {
          field: 'label',
          type: 'ordinal',
          title: chart.labelAxis ?? null,
          sort: null,
          axis: { labelAngle: 0, labelLimit: LABEL_LIMIT },
        },
        y: { field: 'value', type: 'quantitative', title: chart.axis },
        color,
      },
    };
  }
  return {
    title: chart.title,
    width: 420,
    data: { values: chart.values },
    mark: { type: 'bar', tooltip: false },
    encoding: {
      y: { field: 'label', type: 'nominal', title: null, sort: null, axis: { labelLimit: LABEL_LIMIT } },
      x: { field: 'value', type: 'quantitative', title: chart.axis },
      ...(series ? { yOffset: { field: 'series', sort: null } } : {}),
      color,
    },
  };
}

/**
 * A chart as inline SVG, drawn here by Vega-Lite/Vega (headless, no canvas, no network): the
 * report stays one self-contained file.
 */
export async function drawChart(chart: ChartSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(specOf(chart)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
