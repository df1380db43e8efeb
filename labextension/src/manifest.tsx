/**
 * Manifest diagnostics: while a manifest.yaml is the current editor, its located problems (line, column,
 * JSON pointer, did-you-mean) are listed in the right sidebar; clicking one moves the cursor there.
 */

import * as React from 'react';

import { IDocumentWidget } from '@jupyterlab/docregistry';
import { FileEditor, IEditorTracker } from '@jupyterlab/fileeditor';
import { ReactWidget } from '@jupyterlab/ui-components';

import { diagnose } from './api';
import { IDiagnostic, isManifest, toDiagnostics } from './diagnostics';

type EditorWidget = IDocumentWidget<FileEditor>;

interface IState {
  path: string;
  diagnostics: IDiagnostic[];
  error: string;
  checked: boolean;
}

function List(props: { state: IState | null; onPick: (d: IDiagnostic) => void }): JSX.Element {
  const { state } = props;
  if (!state) {
    return <div className="synapse-Note">Open a plugin's manifest.yaml to see its problems here.</div>;
  }
  return (
    <div className="synapse-Diagnostics-body">
      <div className="synapse-Diagnostics-path">{state.path}</div>
      {state.error ? <div className="synapse-Error">error: {state.error}</div> : null}
      {state.checked && !state.error && !state.diagnostics.length ? (
        <div className="synapse-ok synapse-Diagnostics-clean">no problems: the manifest is valid</div>
      ) : null}
      <ul className="synapse-Diagnostics-list">
        {state.diagnostics.map((d, i) => (
          <li
            key={i}
            className="synapse-Diagnostic"
            data-line={d.line + 1}
            data-col={d.column + 1}
            title="Move the cursor there"
            onClick={() => props.onPick(d)}
          >
            <span className="synapse-Diagnostic-where">{d.where}</span>{' '}
            {d.pointer ? <code className="synapse-Diagnostic-pointer">{d.pointer}</code> : null}{' '}
            <span className="synapse-Diagnostic-message">{d.message}</span>
            {d.hint ? <span className="synapse-Diagnostic-hint"> did you mean {d.hint}?</span> : null}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** The right-sidebar panel that follows the current manifest.yaml editor. */
export class ManifestDiagnostics extends ReactWidget {
  private _state: IState | null = null;
  private _editor: EditorWidget | null = null;
  private _timer: number | null = null;
  private _seq = 0;

  constructor(
    private readonly _tracker: IEditorTracker,
    private readonly _show: () => void,
    private readonly _activate: (widget: EditorWidget) => void
  ) {
    super();
    this.addClass('synapse-Diagnostics');
    _tracker.currentChanged.connect(this._follow, this);
    this._follow();
  }

  private _follow(): void {
    const current = this._tracker.currentWidget as EditorWidget | null;
    if (current === this._editor) {
      return;
    }
    if (this._editor) {
      this._editor.content.model.sharedModel.changed.disconnect(this._schedule, this);
    }
    if (!current || !isManifest(current.context.path)) {
      this._editor = null;
      return; // keep showing the last manifest's problems until another manifest is current
    }
    this._editor = current;
    current.content.model.sharedModel.changed.connect(this._schedule, this);
    current.disposed.connect(() => {
      if (this._editor === current) {
        this._editor = null;
      }
    });
    void current.context.ready.then(() => this._check());
    this._show();
  }

  private _schedule(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
    this._timer = window.setTimeout(() => {
      this._timer = null;
      void this._check();
    }, 300);
  }

  private async _check(): Promise<void> {
    const editor = this._editor;
    if (!editor) {
      return;
    }
    const seq = ++this._seq;
    const text = editor.content.model.sharedModel.getSource();
    const path = editor.context.path;
    try {
      const answer = await diagnose(path, text);
      if (seq === this._seq) {
        this._state = { path, diagnostics: toDiagnostics(answer.problems, text), error: '', checked: true };
      }
    } catch (error) {
      if (seq === this._seq) {
        this._state = { path, diagnostics: [], error: String((error as Error).message || error), checked: true };
      }
    }
    this.update();
  }

  private _pick(d: IDiagnostic): void {
    const editor = this._editor;
    if (!editor) {
      return;
    }
    const position = { line: d.line, column: d.column };
    editor.content.editor.setCursorPosition(position);
    editor.content.editor.revealPosition(position);
    this._activate(editor);
    editor.content.editor.focus();
  }

  render(): JSX.Element {
    return (
      <div className="synapse-Diagnostics-panel">
        <h2>Manifest problems</h2>
        <List state={this._state} onPick={d => this._pick(d)} />
      </div>
    );
  }
}
