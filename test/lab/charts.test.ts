/** The report's charts draw every label whole: Vega cuts long ones with an ellipsis by default. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { drawChart } from '../../src/lab/charts.ts';

describe('lab charts', () => {
  const long = 'stateful (server memory, sticky balancer, one machine)';
  const longSeries = 'cart update (one atomic increment per request, session state)';

  it('draws long bar labels and series names whole', async () => {
    const svg = await drawChart({
      title: 'Throughput',
      axis: 'requests/s',
      values: [
        { label: long, value: 7826, series: longSeries },
        { label: 'stateless, redis', value: 6558, series: 'GET /api/me' },
      ],
    });
    assert.ok(svg.includes(`>${long}</text>`), 'the bar label whole');
    assert.ok(svg.includes(`>${longSeries}</text>`), 'the legend label whole');
    assert.ok(!svg.includes('…'), 'no label cut');
  });

  it('draws long labels of a line chart whole', async () => {
    const svg = await drawChart({
      title: 'Scaling',
      axis: 'requests/s',
      kind: 'line',
      labelAxis: 'servers',
      values: [1, 2].map((n) => ({ label: `${n} ${long}`, value: n * 1000 })),
    });
    assert.ok(svg.includes(`>1 ${long}</text>`));
    assert.ok(!svg.includes('…'));
  });
});
