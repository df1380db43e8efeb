import { compareLatest, fmt, plotSweeps, sweepsFrom } from '../bench';

const rows = (p50: number[]) =>
  [1, 8, 64].map((b, i) => ({ batch_size: b, concurrency: 1, p50_ms: p50[i], p99_ms: p50[i] * 2, throughput_items_s: b / p50[i] }));

const sweeps = sweepsFrom([
  { version: '1.0.0', ts: 1, data: { rows: rows([1, 2, 8]), isolation: 'nsjail' } },
  { version: '1.1.0', ts: 2, data: { rows: rows([0.5, 2, 4]), isolation: 'nsjail' } }
]);

describe('plotSweeps', () => {
  it('puts the batch sizes themselves on a log2 axis', () => {
    const plot = plotSweeps(sweeps, 'p50_ms', 420, 200, 40);
    expect(plot.xTicks.map(t => t.label)).toEqual(['1', '8', '64']);
    expect(plot.xTicks[0].x).toBe(40);
    expect(plot.xTicks[2].x).toBe(380);
    expect(plot.xTicks[1].x).toBeCloseTo(40 + (3 / 6) * 340);
  });
  it('draws one series per version, the newest marked latest', () => {
    const plot = plotSweeps(sweeps, 'p50_ms');
    expect(plot.series.map(s => [s.version, s.latest])).toEqual([
      ['1.0.0', false],
      ['1.1.0', true]
    ]);
    const [old] = plot.series;
    expect(old.points[2].y).toBeLessThan(old.points[0].y); // larger values are higher up
  });
  it('skips rows with missing values and other concurrencies', () => {
    const odd = sweepsFrom([
      { version: '1', ts: 1, data: { rows: [{ batch_size: 1, concurrency: 4, p50_ms: 1 }, { batch_size: 2, concurrency: 1, p50_ms: null }] } }
    ]);
    expect(plotSweeps(odd, 'p50_ms').series).toEqual([]);
  });
});

describe('compareLatest and fmt', () => {
  it('gives the relative change against the previous version per batch size', () => {
    expect(compareLatest(sweeps, 'p50_ms')).toEqual([
      { batch: 1, change: -0.5 },
      { batch: 8, change: 0 },
      { batch: 64, change: -0.5 }
    ]);
    expect(compareLatest(sweeps.slice(0, 1), 'p50_ms')).toEqual([]);
  });
  it('rounds for reading and shows missing values as a dash', () => {
    expect(fmt(0.123456)).toBe('0.12');
    expect(fmt(3.14159)).toBe('3.14');
    expect(fmt(12345.6)).toBe('12.3k');
    expect(fmt(64)).toBe('64');
    expect(fmt(null)).toBe('-');
    expect(fmt(NaN)).toBe('-');
  });
});
