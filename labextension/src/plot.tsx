/**
 * Small React views shared by the plugin panel and the output renderer: schema tables, a JSON block that
 * wraps at spaces (never mid-word) and the benchmark plot (batch sizes on the axis, one line per version).
 */

import * as React from 'react';

import { ISweep, Metric, compareLatest, fmt, plotSweeps } from './bench';
import { schemaRows, typeOf } from './schema';

export function JsonBlock(props: { value: unknown; className?: string }): JSX.Element {
  let text: string;
  try {
    text = JSON.stringify(props.value, null, 2);
  } catch {
    text = String(props.value);
  }
  return <pre className={`synapse-Json ${props.className || ''}`}>{text === undefined ? 'undefined' : text}</pre>;
}

export function SchemaTable(props: { name: string; schema: any }): JSX.Element {
  if (props.schema === null || props.schema === undefined) {
    return <div className="synapse-Note">{props.name}: missing or not JSON</div>;
  }
  const rows = schemaRows(props.schema);
  return (
    <div className="synapse-Schema">
      <div className="synapse-Schema-title">
        <b>{props.name}</b> ({typeOf(props.schema)})
      </div>
      {rows.length ? (
        <div className="synapse-Scroll">
          <table className="synapse-Table">
            <thead>
              <tr>
                <th>property</th>
                <th>type</th>
                <th>required</th>
                <th>constraints</th>
                <th>description</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(r => (
                <tr key={r.property}>
                  <td>
                    <code>{r.property}</code>
                  </td>
                  <td>{r.type}</td>
                  <td>{r.required ? 'yes' : ''}</td>
                  <td>{r.constraints}</td>
                  <td>{r.description}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <div className="synapse-Note">no properties: any value of this type</div>
      )}
    </div>
  );
}

const COLORS = ['#9e9e9e', '#7986cb', '#4db6ac', '#ffb74d', '#ba68c8', '#1e88e5'];

export function BenchPlot(props: { sweeps: ISweep[]; metric: Metric; title: string }): JSX.Element {
  const plot = plotSweeps(props.sweeps, props.metric);
  if (!plot.series.length) {
    return <div className="synapse-Note">no benchmark yet (run %synapse bench NAME EXPR in a notebook)</div>;
  }
  const changes = compareLatest(props.sweeps, props.metric);
  return (
    <div className="synapse-Plot">
      <svg width={plot.width} height={plot.height} role="img" aria-label={props.title}>
        <text x={plot.width / 2} y={12} textAnchor="middle" className="synapse-Plot-title">
          {props.title}
        </text>
        {plot.yTicks.map(t => (
          <g key={`y${t.label}${t.y}`}>
            <line x1={40} x2={plot.width - 40} y1={t.y} y2={t.y} className="synapse-Plot-grid" />
            <text x={36} y={t.y + 3} textAnchor="end" className="synapse-Plot-tick">
              {t.label}
            </text>
          </g>
        ))}
        {plot.xTicks.map(t => (
          <text key={`x${t.label}`} x={t.x} y={plot.height - 16} textAnchor="middle" className="synapse-Plot-tick">
            {t.label}
          </text>
        ))}
        <text x={plot.width / 2} y={plot.height - 2} textAnchor="middle" className="synapse-Plot-tick">
          batch size
        </text>
        {plot.series.map((s, i) => {
          const color = s.latest ? COLORS[COLORS.length - 1] : COLORS[i % (COLORS.length - 1)];
          return (
            <g key={s.version} data-version={s.version}>
              <polyline
                fill="none"
                stroke={color}
                strokeWidth={s.latest ? 2.5 : 1.5}
                strokeDasharray={s.latest ? undefined : '4 3'}
                points={s.points.map(p => `${p.x},${p.y}`).join(' ')}
              />
              {s.points.map(p => (
                <circle key={p.batch} cx={p.x} cy={p.y} r={3} fill={color}>
                  <title>{`${s.version}, batch ${p.batch}: ${fmt(p.value)}`}</title>
                </circle>
              ))}
            </g>
          );
        })}
      </svg>
      <div className="synapse-Plot-legend">
        {plot.series.map((s, i) => (
          <span key={s.version} style={{ color: s.latest ? COLORS[COLORS.length - 1] : COLORS[i % (COLORS.length - 1)] }}>
            {s.latest ? <b>{s.version} (latest)</b> : s.version}
          </span>
        ))}
        {changes.length ? (
          <span className="synapse-Plot-change">
            vs previous: {changes.map(c => `batch ${c.batch} ${c.change >= 0 ? '+' : ''}${(c.change * 100).toFixed(0)}%`).join(', ')}
          </span>
        ) : null}
      </div>
    </div>
  );
}

/** A benchmark table with rounded numbers (NaN shown as a dash). */
export function BenchTable(props: { rows: { [key: string]: any }[] }): JSX.Element {
  const columns = ['batch_size', 'concurrency', 'throughput_items_s', 'p50_ms', 'p90_ms', 'p99_ms', 'queue_ms', 'handler_ms', 'error_rate', 'peak_memory_mb'];
  const present = columns.filter(c => props.rows.some(r => c in r));
  return (
    <div className="synapse-Scroll">
      <table className="synapse-Table synapse-BenchTable">
        <thead>
          <tr>
            {present.map(c => (
              <th key={c}>{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((r, i) => (
            <tr key={i}>
              {present.map(c => (
                <td key={c}>{typeof r[c] === 'number' ? fmt(r[c]) : r[c] === null || r[c] === undefined ? '-' : String(r[c])}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
