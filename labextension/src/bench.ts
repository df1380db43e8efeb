/**
 * Benchmark history per plugin version, from the event log's ``bench`` rows, as series for a plot of a
 * version against the previous ones: p50 latency and throughput by batch size, on a log2 axis whose ticks
 * are the batch sizes themselves (not powers of two).
 */

export interface IBenchRow {
  batch_size: number;
  concurrency: number;
  throughput_items_s: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  error_rate?: number | null;
}

export interface ISweep {
  version: string;
  ts: number;
  isolation: string;
  rows: IBenchRow[];
}

export interface IPoint {
  x: number;
  y: number;
  batch: number;
  value: number;
}

export interface ISeries {
  version: string;
  latest: boolean;
  points: IPoint[];
}

export interface IPlot {
  width: number;
  height: number;
  xTicks: { x: number; label: string }[];
  yTicks: { y: number; label: string }[];
  series: ISeries[];
}

export type Metric = 'p50_ms' | 'throughput_items_s';

/** Sweeps from ``bench`` event rows (one per version, oldest version first, as the server sends them). */
export function sweepsFrom(rows: { version: string; ts: number; data: { [key: string]: any } }[]): ISweep[] {
  return rows.map(r => ({
    version: r.version,
    ts: r.ts,
    isolation: String(r.data.isolation || ''),
    rows: Array.isArray(r.data.rows) ? (r.data.rows as IBenchRow[]) : []
  }));
}

/** A readable number: 3 significant digits, thousands as k. */
export function fmt(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return '-';
  }
  const abs = Math.abs(value);
  if (Number.isInteger(value) && abs < 10000) {
    return String(value);
  }
  if (abs >= 10000) {
    return `${(value / 1000).toFixed(abs >= 100000 ? 0 : 1)}k`;
  }
  if (abs >= 100) {
    return value.toFixed(0);
  }
  if (abs >= 1) {
    return value.toFixed(abs >= 10 ? 1 : 2);
  }
  return value.toPrecision(2);
}

/** Plot geometry for ``metric`` of every sweep (concurrency 1 rows), in a ``width`` x ``height`` box. */
export function plotSweeps(sweeps: ISweep[], metric: Metric, width = 420, height = 200, margin = 40): IPlot {
  const usable = sweeps
    .map(s => ({
      version: s.version,
      rows: s.rows.filter(r => (r.concurrency || 1) === 1 && typeof r[metric] === 'number' && Number.isFinite(r[metric] as number))
    }))
    .filter(s => s.rows.length);
  const batches = Array.from(new Set(usable.flatMap(s => s.rows.map(r => r.batch_size)))).sort((a, b) => a - b);
  const values = usable.flatMap(s => s.rows.map(r => r[metric] as number));
  const plot: IPlot = { width, height, xTicks: [], yTicks: [], series: [] };
  if (!batches.length) {
    return plot;
  }
  const lo = Math.log2(Math.max(batches[0], 1));
  const hi = Math.log2(Math.max(batches[batches.length - 1], 1));
  const xOf = (b: number): number =>
    hi === lo ? margin + (width - 2 * margin) / 2 : margin + ((Math.log2(Math.max(b, 1)) - lo) / (hi - lo)) * (width - 2 * margin);
  const top = Math.max(...values) * 1.1 || 1;
  const yOf = (v: number): number => height - margin + 10 - (v / top) * (height - margin - 10);
  plot.xTicks = batches.map(b => ({ x: xOf(b), label: String(b) }));
  plot.yTicks = [0, 0.25, 0.5, 0.75, 1].map(f => ({ y: yOf(top * f), label: fmt(top * f) }));
  plot.series = usable.map((s, i) => ({
    version: s.version,
    latest: i === usable.length - 1,
    points: [...s.rows]
      .sort((a, b) => a.batch_size - b.batch_size)
      .map(r => ({ x: xOf(r.batch_size), y: yOf(r[metric] as number), batch: r.batch_size, value: r[metric] as number }))
  }));
  return plot;
}

/** The latest version's change against the previous one at each batch size (``-12%`` is faster for latency). */
export function compareLatest(sweeps: ISweep[], metric: Metric): { batch: number; change: number }[] {
  if (sweeps.length < 2) {
    return [];
  }
  const [previous, latest] = sweeps.slice(-2);
  const before = new Map(previous.rows.filter(r => (r.concurrency || 1) === 1).map(r => [r.batch_size, r[metric]]));
  return latest.rows
    .filter(r => (r.concurrency || 1) === 1)
    .map(r => ({ batch: r.batch_size, now: r[metric], then: before.get(r.batch_size) }))
    .filter(c => typeof c.now === 'number' && typeof c.then === 'number' && (c.then as number) !== 0)
    .map(c => ({ batch: c.batch, change: ((c.now as number) - (c.then as number)) / (c.then as number) }));
}
