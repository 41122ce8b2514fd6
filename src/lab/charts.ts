import { compile, type TopLevelSpec } from 'vega-lite';
import * as vega from 'vega';

/**
 * A horizontal bar chart as inline SVG, drawn here by Vega-Lite/Vega (headless, no canvas, no
 * network): the report stays one self-contained file.
 */
export async function barChart(options: {
  title: string;
  values: Array<{ label: string; value: number }>;
  axis: string;
}): Promise<string> {
  const spec: TopLevelSpec = {
    title: options.title,
    width: 420,
    data: { values: options.values },
    mark: { type: 'bar', tooltip: false },
    encoding: {
      y: { field: 'label', type: 'nominal', title: null, sort: null },
      x: { field: 'value', type: 'quantitative', title: options.axis },
      color: { value: '#3b6ea5' },
    },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
