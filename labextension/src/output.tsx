/**
 * Notebook outputs of synapse widgets that survive closing and reopening the notebook.
 *
 * Every synapse widget's output also carries ``application/vnd.synapse.widget+json`` (its state as JSON).
 * This renderer ranks above the ipywidgets one, so a saved output always renders: first as a static view
 * built from that JSON (with DOM nodes, never HTML strings from the file), then, when the notebook's kernel
 * still has the widget's model (the output was just produced, or the notebook was reopened while its kernel
 * ran), it is swapped for the live ipywidget. A reopened notebook thus shows the lifecycle, schemas, calls and
 * benchmarks it was saved with instead of "Error displaying widget: model not found".
 */

import * as React from 'react';

import { NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Panel, Widget } from '@lumino/widgets';

import { sweepsFrom } from './bench';
import { JsonBlock, SchemaTable, BenchPlot, BenchTable } from './plot';

export const MIME = 'application/vnd.synapse.widget+json';
export const WIDGET_MIME = 'application/vnd.jupyter.widget-view+json';
export const RANK = -20; // the ipywidgets renderer is -10

interface IPayload {
  kind: 'lifecycle' | 'schema' | 'iodebug' | 'bench';
  version: number;
  data: { [key: string]: any };
}

const STAGES = ['DISCOVERED', 'VALIDATED', 'ACTIVATING', 'ACTIVE', 'TEARING_DOWN', 'STOPPED'];

function Lifecycle(props: { data: { [key: string]: any } }): JSX.Element {
  const d = props.data;
  const reached = STAGES.indexOf(d.stage);
  return (
    <div className="synapse-Out-lifecycle">
      <b>{d.plugin}</b>{' '}
      {STAGES.map((s, i) => (
        <span key={s} className={`synapse-Stage${s === d.stage ? ' synapse-Stage-now' : i < reached ? ' synapse-Stage-done' : ''}`}>
          {s.toLowerCase().replace('_', ' ')}
          {d.timings_ms && typeof d.timings_ms[s] === 'number' && s !== 'ACTIVE' && s !== 'STOPPED'
            ? ` ${d.timings_ms[s].toFixed(1)} ms`
            : ''}
        </span>
      ))}
      {d.stage === 'FAILED' ? <span className="synapse-Stage synapse-Stage-failed">FAILED</span> : null}
      <div>
        isolation: <b className={d.isolation === 'process' ? 'synapse-err' : ''}>{d.isolation || '-'}</b>, signer:{' '}
        {d.signer || '-'}
        {d.activation_ms ? `, activated in ${Number(d.activation_ms).toFixed(1)} ms` : ''}
      </div>
      {d.failure ? <div className="synapse-err">{d.failure}</div> : null}
      {d.isolation === 'process' ? (
        <div className="synapse-err">process isolation (opted in): rlimits only, NOT sandboxed</div>
      ) : null}
      {d.note ? <div className="synapse-warn">{d.note}</div> : null}
    </div>
  );
}

function IODebug(props: { data: { [key: string]: any } }): JSX.Element {
  const calls: any[] = props.data.calls || [];
  const [picked, setPicked] = React.useState(0);
  if (!calls.length) {
    return <div>{props.data.plugin}: no calls yet</div>;
  }
  const call = calls[Math.min(picked, calls.length - 1)];
  const stoppedAt: { [k: string]: string } = { input: 'validated input', execute: 'raw output', output: 'validated output' };
  const steps: [string, string][] = [
    ['input', 'payload'],
    ['validated input', 'validated_input'],
    ['raw output', 'raw_output'],
    ['validated output', 'output']
  ];
  const stop = call.error ? stoppedAt[call.stage] : undefined;
  const cells: JSX.Element[] = [];
  for (const [label, key] of steps) {
    if (stop === label) {
      cells.push(
        <td key={label}>
          <b>{label}</b>
          <div className="synapse-err">FAILED: {call.error}</div>
        </td>
      );
      break;
    }
    cells.push(
      <td key={label}>
        <b>{label}</b>
        <JsonBlock value={call[key]} />
      </td>
    );
  }
  return (
    <div className="synapse-Out-iodebug">
      <b>{props.data.plugin}</b>{' '}
      <select value={picked} onChange={e => setPicked(Number(e.target.value))}>
        {calls.map((c, i) => (
          <option key={i} value={i}>
            #{calls.length - i} {Number(c.total_ms).toFixed(1)} ms {c.error ? `failed at ${stoppedAt[c.stage] || c.stage}` : 'ok'}
          </option>
        ))}
      </select>
      <div>
        total {Number(call.total_ms).toFixed(2)} ms = queue {Number(call.queue_ms).toFixed(2)} ms + handler{' '}
        {Number(call.handler_ms).toFixed(2)} ms + sandbox and validation
      </div>
      <div className="synapse-Scroll">
        <table className="synapse-Table synapse-Steps">
          <tbody>
            <tr>{cells}</tr>
          </tbody>
        </table>
      </div>
      {call.stdout ? <JsonBlock value={call.stdout} /> : null}
      {call.stderr ? <JsonBlock value={call.stderr} className="synapse-err" /> : null}
    </div>
  );
}

function Bench(props: { data: { [key: string]: any } }): JSX.Element {
  const d = props.data;
  const current = { version: d.version || 'this run', ts: 0, isolation: d.isolation || '', rows: d.rows || [] };
  const previous = sweepsFrom(d.previous || []).filter(s => s.version !== current.version);
  const sweeps = [...previous, current];
  return (
    <div className="synapse-Out-bench">
      {d.title ? <b>{d.title}</b> : null}
      <div className="synapse-Out-plots">
        <BenchPlot sweeps={sweeps} metric="throughput_items_s" title="throughput (items/s)" />
        <BenchPlot sweeps={sweeps} metric="p50_ms" title="p50 latency per request (ms)" />
      </div>
      <BenchTable rows={d.rows || []} />
    </div>
  );
}

function Static(props: { payload: IPayload }): JSX.Element {
  const { kind, data } = props.payload;
  switch (kind) {
    case 'lifecycle':
      return <Lifecycle data={data} />;
    case 'iodebug':
      return <IODebug data={data} />;
    case 'bench':
      return <Bench data={data} />;
    case 'schema':
      return (
        <div className="synapse-Out-schema">
          {data.title ? <b>{data.title}</b> : null}
          {Object.entries(data.schemas || {}).map(([name, schema]) => (
            <SchemaTable key={name} name={name} schema={schema} />
          ))}
        </div>
      );
    default:
      return <JsonBlock value={data} />;
  }
}

class StaticView extends ReactWidget {
  constructor(private readonly _payload: IPayload) {
    super();
    this.addClass('synapse-Out-static');
  }

  render(): JSX.Element {
    return <Static payload={this._payload} />;
  }
}

/** Asks a notebook's kernel which widget models are alive (cached briefly: a "Run all" renders many). */
const commCache = new WeakMap<object, { at: number; ids: Promise<Set<string>> }>();

async function liveModelIds(panel: NotebookPanel): Promise<Set<string>> {
  const kernel = panel.sessionContext.session ? panel.sessionContext.session.kernel : null;
  if (!kernel || kernel.connectionStatus !== 'connected') {
    return new Set();
  }
  const cached = commCache.get(kernel);
  if (cached && Date.now() - cached.at < 300) {
    return cached.ids;
  }
  const ids = kernel
    .requestCommInfo({ target_name: 'jupyter.widget' })
    .then(reply => new Set(reply.content.status === 'ok' ? Object.keys(reply.content.comms) : []))
    .catch(() => new Set<string>());
  commCache.set(kernel, { at: Date.now(), ids });
  return ids;
}

/** The renderer: the static view at once, the live widget instead when the kernel has its model. */
export class SynapseOutput extends Panel implements IRenderMime.IRenderer {
  constructor(
    options: IRenderMime.IRendererOptions,
    private readonly _panel: NotebookPanel | null
  ) {
    super();
    this.addClass('synapse-Out');
    this.addClass('synapse-w');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const payload = model.data[MIME] as unknown as IPayload;
    const view = new StaticView(payload);
    for (const child of [...this.widgets]) {
      child.dispose();
    }
    this.addWidget(view);
    view.update();
    const widgetData = model.data[WIDGET_MIME] as { model_id?: string } | undefined;
    if (!this._panel || !widgetData || !widgetData.model_id) {
      return;
    }
    const live = await this._upgrade(model, widgetData.model_id);
    if (live && !this.isDisposed) {
      view.dispose();
      this.addWidget(live);
    }
  }

  private async _upgrade(model: IRenderMime.IMimeModel, modelId: string): Promise<Widget | null> {
    const panel = this._panel;
    if (!panel) {
      return null;
    }
    try {
      const alive = await liveModelIds(panel);
      if (!alive.has(modelId)) {
        return null;
      }
      const rendermime = panel.content.rendermime;
      if (!rendermime.mimeTypes.includes(WIDGET_MIME)) {
        return null;
      }
      const renderer = rendermime.createRenderer(WIDGET_MIME);
      await renderer.renderModel(model);
      return renderer;
    } catch {
      return null; // keep the static view
    }
  }
}

/** A renderer factory; ``panel`` (a notebook) lets outputs become live widgets again. */
export function outputFactory(panel: NotebookPanel | null): IRenderMime.IRendererFactory {
  return {
    safe: true,
    mimeTypes: [MIME],
    defaultRank: RANK,
    createRenderer: options => new SynapseOutput(options, panel)
  };
}
