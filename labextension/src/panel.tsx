/**
 * The plugin panel: manifest summary, located problems, signature, permissions and secrets, input and output
 * schemas as tables, "Try it" (a form generated from the input schema, run through the server in the
 * sandbox), recent calls, benchmarks against previous versions, the actions validate / sign / verify / test
 * with their one-line results, and "Open in a notebook".
 */

import * as React from 'react';

import { FormComponent, ReactWidget } from '@jupyterlab/ui-components';
import validator from '@rjsf/validator-ajv8';

import { IActionResult, IPluginDetail, getPlugin, oneLine, runAction } from './api';
import { sweepsFrom } from './bench';
import { IEventRow, IPluginSummary, Scope, badgeOf, formatProblem, shortSigner } from './model';
import { BenchPlot, BenchTable, JsonBlock, SchemaTable } from './plot';
import { formCanRender, initialPayload } from './schema';
import { PluginsModel } from './sidebar';

export interface IPanelActions {
  openInNotebook(detail: IPluginDetail, how: 'load' | 'cell'): Promise<void>;
}

type ActionName = 'validate' | 'sign' | 'verify' | 'test';

function Section(props: { title: string; children: React.ReactNode; className?: string }): JSX.Element {
  return (
    <section className={`synapse-Section ${props.className || ''}`}>
      <h3>{props.title}</h3>
      {props.children}
    </section>
  );
}

function TryIt(props: { scope: Scope; path: string; schema: any; onRan: () => void }): JSX.Element {
  const usable = formCanRender(props.schema);
  const [mode, setMode] = React.useState<'form' | 'json'>(usable ? 'form' : 'json');
  const [formData, setFormData] = React.useState<any>(() => initialPayload(props.schema));
  const [text, setText] = React.useState(() => JSON.stringify(initialPayload(props.schema) ?? {}, null, 2));
  const [running, setRunning] = React.useState(false);
  const [outcome, setOutcome] = React.useState<IActionResult | null>(null);
  const run = async (): Promise<void> => {
    let payload: unknown = formData;
    if (mode === 'json') {
      try {
        payload = JSON.parse(text);
      } catch (error) {
        setOutcome({ ok: false, error: { code: 'usage', exit_code: 2, message: `the payload is not JSON: ${(error as Error).message}` } });
        return;
      }
    }
    setRunning(true);
    try {
      setOutcome(await runAction('run', props.scope, props.path, { payload: payload === undefined ? {} : payload }));
    } finally {
      setRunning(false);
      props.onRan();
    }
  };
  return (
    <div className="synapse-TryIt">
      <div className="synapse-TryIt-modes">
        <label>
          <input type="radio" checked={mode === 'form'} disabled={!usable} onChange={() => setMode('form')} /> form
        </label>
        <label>
          <input
            type="radio"
            checked={mode === 'json'}
            onChange={() => {
              setText(JSON.stringify(formData ?? {}, null, 2));
              setMode('json');
            }}
          />{' '}
          JSON
        </label>
      </div>
      {mode === 'form' ? (
        <div className="synapse-TryIt-form">
          <FormComponent
            schema={props.schema}
            formData={formData}
            validator={validator as any}
            onChange={(e: any) => setFormData(e.formData)}
            uiSchema={{ 'ui:submitButtonOptions': { norender: true } }}
            liveValidate={false}
            noHtml5Validate={true}
          />
        </div>
      ) : (
        <textarea
          className="synapse-TryIt-json jp-mod-styled"
          spellCheck={false}
          rows={8}
          value={text}
          onChange={e => setText(e.target.value)}
        />
      )}
      <button className="jp-mod-styled jp-mod-accept synapse-Run" disabled={running} onClick={() => void run()}>
        {running ? 'Running...' : 'Run in the sandbox'}
      </button>
      {outcome ? (
        outcome.ok ? (
          <div className="synapse-Result synapse-ok">
            <div className="synapse-Result-line">{oneLine('run', outcome)}</div>
            <JsonBlock value={outcome.result} />
          </div>
        ) : (
          <div className="synapse-Result synapse-err">
            <div className="synapse-Result-line">{oneLine('run', outcome)}</div>
            {outcome.error && outcome.error.pointer !== undefined ? (
              <div className="synapse-Result-where">
                at <code>{outcome.error.pointer || '/'}</code>
                {outcome.error.schema ? ` of ${outcome.error.schema}` : ''}
              </div>
            ) : null}
          </div>
        )
      ) : null}
    </div>
  );
}

function Calls(props: { calls: IEventRow[] }): JSX.Element {
  if (!props.calls.length) {
    return <div className="synapse-Note">no calls of this version yet</div>;
  }
  return (
    <div className="synapse-Scroll">
      <table className="synapse-Table synapse-Calls">
        <thead>
          <tr>
            <th>when</th>
            <th>where</th>
            <th>ms</th>
            <th>outcome</th>
          </tr>
        </thead>
        <tbody>
          {props.calls.map(c => (
            <tr key={c.id} className={c.data.error || c.data.errors ? 'synapse-err' : ''}>
              <td>{new Date(c.ts * 1000).toLocaleTimeString()}</td>
              <td>
                {c.source} {c.pid}
              </td>
              <td>{c.kind === 'calls' ? `p50 ${c.data.ms_p50}, max ${c.data.ms_max}` : c.data.ms}</td>
              <td>
                {c.kind === 'calls'
                  ? `${c.data.count} calls, ${c.data.errors} errors (summarised)`
                  : c.data.error
                    ? `${c.data.error}: ${c.data.message || ''}`
                    : 'ok'}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Panel(props: { scope: Scope; path: string; model: PluginsModel; actions: IPanelActions }): JSX.Element {
  const [detail, setDetail] = React.useState<IPluginDetail | null>(null);
  const [error, setError] = React.useState('');
  const [results, setResults] = React.useState<{ [k: string]: { line: string; ok: boolean } }>({});
  const [busy, setBusy] = React.useState<string>('');
  const [, setTick] = React.useState(0);
  const load = React.useCallback(async () => {
    try {
      setDetail(await getPlugin(props.scope, props.path));
      setError('');
    } catch (e) {
      setError(String((e as Error).message || e));
    }
  }, [props.scope, props.path]);
  React.useEffect(() => {
    void load();
    const onChange = (): void => setTick(t => t + 1);
    props.model.changed.connect(onChange);
    // New calls or benchmarks of this plugin: reload the history (at most twice a second).
    let timer: number | null = null;
    const onMessage = (_: unknown, message: any): void => {
      if (message.type === 'event' && detail === null) {
        return;
      }
      if (message.type === 'event' && message.event.plugin === (detail && detail.name) && timer === null) {
        timer = window.setTimeout(() => {
          timer = null;
          void load();
        }, 500);
      }
    };
    props.model.stream.message.connect(onMessage);
    return () => {
      props.model.changed.disconnect(onChange);
      props.model.stream.message.disconnect(onMessage);
      if (timer !== null) {
        window.clearTimeout(timer);
      }
    };
  }, [load, props.model, detail && detail.name]);
  if (error) {
    return <div className="synapse-Panel synapse-Error">error: {error}</div>;
  }
  if (!detail) {
    return <div className="synapse-Panel synapse-Note">Loading...</div>;
  }
  const summary: IPluginSummary = props.model.find(props.scope, props.path) || detail;
  const badge = badgeOf({ ...detail, live: summary.live || detail.live });
  const m = detail.manifest;
  const act = async (name: ActionName): Promise<void> => {
    setBusy(name);
    try {
      const result = await runAction(name, props.scope, props.path);
      setResults(r => ({ ...r, [name]: { line: oneLine(name, result), ok: result.ok } }));
      await load();
      if (name === 'sign' || name === 'validate') {
        void props.model.refresh();
      }
    } finally {
      setBusy('');
    }
  };
  const input = detail.schemas['input_schema.json'];
  const output = detail.schemas['output_schema.json'];
  const sweeps = sweepsFrom(detail.history.benchmarks);
  const latest = sweeps.length ? sweeps[sweeps.length - 1] : null;
  return (
    <div className="synapse-Panel" data-plugin={detail.name}>
      <header className="synapse-Panel-header">
        <h2>
          {detail.name} <span className="synapse-PluginRow-version">{detail.version}</span>{' '}
          <span className={`synapse-Badge synapse-Badge-${badge.kind}`} title={badge.title}>
            {badge.label}
          </span>
        </h2>
        <div className="synapse-Note">
          {detail.scope}: {detail.path}
        </div>
        {detail.description ? <p>{detail.description}</p> : null}
        <div className="synapse-Actions">
          {(['validate', 'sign', 'verify', 'test'] as ActionName[]).map(name => (
            <button
              key={name}
              className="jp-mod-styled synapse-Action"
              data-action={name}
              disabled={!!busy || (name === 'sign' && detail.scope !== 'workspace')}
              onClick={() => void act(name)}
            >
              {busy === name ? `${name}...` : name[0].toUpperCase() + name.slice(1)}
            </button>
          ))}
          <button className="jp-mod-styled synapse-Open" onClick={() => void props.actions.openInNotebook(detail, 'load')}>
            Open in a notebook
          </button>
          <button className="jp-mod-styled synapse-Open" onClick={() => void props.actions.openInNotebook(detail, 'cell')}>
            As a %%synapse_plugin cell
          </button>
        </div>
        <ul className="synapse-ActionResults">
          {Object.entries(results).map(([name, r]) => (
            <li key={name} data-action={name} className={r.ok ? 'synapse-ok' : 'synapse-err'}>
              {name}: {r.line}
            </li>
          ))}
        </ul>
      </header>
      {detail.problems.length ? (
        <Section title={`Problems (${detail.problems.length})`} className="synapse-Problems">
          <ul>
            {detail.problems.map((p, i) => (
              <li key={i} className="synapse-err">
                {formatProblem(p)}
              </li>
            ))}
          </ul>
        </Section>
      ) : null}
      <Section title="Manifest">
        {m ? (
          <table className="synapse-Table synapse-KV">
            <tbody>
              <tr><th>runtime</th><td>{m.runtime}</td></tr>
              <tr><th>trigger</th><td>{m.trigger}</td></tr>
              <tr><th>timeout</th><td>{m.timeout}</td></tr>
              <tr><th>entrypoint</th><td>{m.entrypoint}</td></tr>
              <tr>
                <th>interfaces</th>
                <td>
                  {(m.interfaces || []).map((i: any) => `${i.type} (${i.protocol}): ${Object.entries(i.endpoints || {}).map(([k, v]) => `${k} ${v}`).join(', ')}`).join('; ') || '-'}
                </td>
              </tr>
              {m.category ? <tr><th>category</th><td>{m.category}</td></tr> : null}
              {m.tags && m.tags.length ? <tr><th>tags</th><td>{m.tags.join(', ')}</td></tr> : null}
              {m.authors && m.authors.length ? <tr><th>authors</th><td>{m.authors.join(', ')}</td></tr> : null}
              {m.license ? <tr><th>license</th><td>{m.license}</td></tr> : null}
              <tr><th>requirements</th><td>{detail.requirements.join(', ') || 'none'}</td></tr>
            </tbody>
          </table>
        ) : (
          <div className="synapse-Note">the manifest does not load: see the problems above</div>
        )}
      </Section>
      <Section title="Signature">
        {detail.signature ? (
          <div className={detail.signature.status === 'verified' ? 'synapse-ok' : 'synapse-err'}>
            {detail.signature.status === 'verified'
              ? `verified: signed by ${shortSigner(detail.signature.signer)} (${detail.signature.signer})`
              : `${detail.signature.status}: ${detail.signature.message}`}
          </div>
        ) : null}
      </Section>
      <Section title="Permissions and secrets">
        {detail.permissions ? (
          <table className="synapse-Table synapse-KV">
            <tbody>
              <tr>
                <th>network</th>
                <td>
                  {detail.permissions.network_access.domains.length
                    ? detail.permissions.network_access.domains.join(', ')
                    : 'none (no network)'}
                </td>
              </tr>
              <tr><th>GPU</th><td>{detail.permissions.system_resources.gpu ? 'yes' : 'no'}</td></tr>
              <tr><th>memory</th><td>{detail.permissions.system_resources.memory_mb} MiB</td></tr>
              <tr><th>secrets</th><td>{detail.secrets.length ? detail.secrets.join(', ') : 'none'}</td></tr>
            </tbody>
          </table>
        ) : null}
      </Section>
      <Section title="Schemas">
        <SchemaTable name="input_schema.json" schema={input} />
        <SchemaTable name="output_schema.json" schema={output} />
      </Section>
      <Section title="Try it" className="synapse-TryIt-section">
        {input !== undefined && input !== null ? (
          <TryIt scope={props.scope} path={props.path} schema={input} onRan={() => void load()} />
        ) : (
          <div className="synapse-Note">no input schema to build a form from</div>
        )}
      </Section>
      <Section title="Recent calls">
        <Calls calls={detail.history.calls} />
      </Section>
      <Section title="Benchmarks by version">
        <BenchPlot sweeps={sweeps} metric="p50_ms" title="p50 latency per request (ms)" />
        <BenchPlot sweeps={sweeps} metric="throughput_items_s" title="throughput (items/s)" />
        {latest ? <BenchTable rows={latest.rows as any[]} /> : null}
      </Section>
    </div>
  );
}

/** One plugin's panel, for the main area. */
export class PanelWidget extends ReactWidget {
  constructor(
    readonly scope: Scope,
    readonly path: string,
    private readonly _model: PluginsModel,
    private readonly _actions: IPanelActions
  ) {
    super();
    this.addClass('synapse-PanelWidget');
  }

  render(): JSX.Element {
    return <Panel scope={this.scope} path={this.path} model={this._model} actions={this._actions} />;
  }
}
