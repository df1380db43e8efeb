/**
 * synapse-nb: the JupyterLab side of synapse_nb.
 *
 * - the Synapse sidebar (left): the workspace's plugins with live lifecycle badges;
 * - a plugin panel per plugin (main area): manifest, schemas, permissions, Try it, calls, benchmarks, actions;
 * - a status bar item: how plugins are isolated on this server;
 * - manifest diagnostics (right): the located problems of the manifest.yaml being edited;
 * - a renderer for synapse widget outputs, so saved notebooks reopen readable.
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { IEditorTracker } from '@jupyterlab/fileeditor';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { IStatusBar } from '@jupyterlab/statusbar';
import { LabIcon } from '@jupyterlab/ui-components';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';

import { EventStream, IPluginDetail } from './api';
import { ManifestDiagnostics } from './manifest';
import { IPluginSummary, Scope, pyLiteral, pyName, relativePath } from './model';
import { outputFactory, RANK } from './output';
import { PanelWidget } from './panel';
import { initialPayload } from './schema';
import { PluginsModel, SidebarWidget } from './sidebar';
import { IsolationStatus } from './status';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
<g class="jp-icon3" fill="#616161"><circle cx="5" cy="6" r="2.5"/><circle cx="19" cy="6" r="2.5"/>
<circle cx="12" cy="18" r="2.5"/><path d="M6.8 7.6l4 8 1.8-.9-4-8zM17.2 7.6l-4 8-1.8-.9 4-8zM7 5h10v2H7z"/></g></svg>`;

export const synapseIcon = new LabIcon({ name: 'synapse-nb:icon', svgstr: ICON_SVG });

namespace CommandIDs {
  export const openSidebar = 'synapse:open-sidebar';
  export const openPlugin = 'synapse:open-plugin';
  export const refresh = 'synapse:refresh';
}

/** The Python that loads a plugin in a notebook, or defines it again from a cell. */
async function notebookCode(
  app: JupyterFrontEnd,
  detail: IPluginDetail,
  notebookDir: string,
  how: 'load' | 'cell'
): Promise<string[]> {
  const variable = pyName(detail.name);
  const example = initialPayload(detail.schemas['input_schema.json']);
  const where = detail.scope === 'workspace' ? relativePath(notebookDir, detail.path) : detail.abspath;
  if (how === 'load' || detail.scope !== 'workspace') {
    return [
      `import synapse_nb\n\n${variable} = synapse_nb.load(${JSON.stringify(where)})\n` +
        `${variable}.run(${pyLiteral(example === undefined ? {} : example)})`
    ];
  }
  const m = detail.manifest || {};
  const entry = String(m.entrypoint || 'handler.py').split(':')[0];
  const file = await app.serviceManager.contents.get(PathExt.join(detail.path, entry), { content: true, type: 'file' });
  const handler = String(file.content || '');
  const input = detail.schemas['input_schema.json'];
  const output = detail.schemas['output_schema.json'];
  const options = [`--version ${detail.version}`];
  if (m.timeout) {
    options.push(`--timeout ${m.timeout}`);
  }
  if (m.trigger && m.trigger !== 'sync') {
    options.push(`--trigger ${m.trigger}`);
  }
  const perms = detail.permissions;
  if (perms) {
    options.push(`--memory-mb ${perms.system_resources.memory_mb}`);
    perms.network_access.domains.forEach(d => options.push(`--allow-domain ${d}`));
    if (perms.system_resources.gpu) {
      options.push('--gpu');
    }
  }
  if (detail.requirements.length) {
    options.push(`--requirements "${detail.requirements.join(' ')}"`);
  }
  const schemas: string[] = [];
  if (input !== undefined && input !== null) {
    schemas.push(`${variable}_input_schema = ${pyLiteral(input)}`);
    options.push(`--input-schema ${variable}_input_schema`);
  }
  if (output !== undefined && output !== null) {
    schemas.push(`${variable}_output_schema = ${pyLiteral(output)}`);
    options.push(`--output-schema ${variable}_output_schema`);
  }
  const cells = [];
  if (schemas.length) {
    cells.push(`# The schemas of ${detail.path}, for the %%synapse_plugin cell below\n${schemas.join('\n')}`);
  }
  cells.push(`%%synapse_plugin ${detail.name} ${options.join(' ')}\n${handler}`);
  return cells;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'synapse-nb:plugin',
  description: 'The Synapse sidebar, plugin panels, status bar item, manifest diagnostics and output renderer.',
  autoStart: true,
  requires: [INotebookTracker, IEditorTracker, IRenderMimeRegistry],
  optional: [ILayoutRestorer, IStatusBar, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    editors: IEditorTracker,
    rendermime: IRenderMimeRegistry,
    restorer: ILayoutRestorer | null,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null
  ) => {
    const stream = new EventStream();
    const model = new PluginsModel(stream);
    const panels = new Map<string, MainAreaWidget<PanelWidget>>();

    // Outputs: static everywhere; in notebooks, live again while the kernel has the widget.
    rendermime.addFactory(outputFactory(null), RANK);
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew(panel: NotebookPanel, _context: DocumentRegistry.IContext<any>): IDisposable {
        panel.content.rendermime.addFactory(outputFactory(panel), RANK);
        return new DisposableDelegate(() => undefined);
      }
    });

    const actions = {
      openInNotebook: async (detail: IPluginDetail, how: 'load' | 'cell'): Promise<void> => {
        let notebook = notebooks.currentWidget;
        if (!notebook) {
          const cwd = detail.scope === 'workspace' ? PathExt.dirname(detail.path) : '';
          notebook = (await app.commands.execute('notebook:create-new', { cwd })) as NotebookPanel;
          await notebook.context.ready;
        }
        const dir = PathExt.dirname(notebook.context.path);
        const cells = await notebookCode(app, detail, dir, how);
        app.shell.activateById(notebook.id);
        for (const source of cells) {
          NotebookActions.insertBelow(notebook.content);
          const cell = notebook.content.activeCell;
          if (cell) {
            cell.model.sharedModel.setSource(source);
          }
        }
      }
    };

    const openPlugin = (scope: Scope, path: string): MainAreaWidget<PanelWidget> => {
      const key = `${scope}:${path}`;
      let widget = panels.get(key);
      if (!widget || widget.isDisposed) {
        const content = new PanelWidget(scope, path, model, actions);
        widget = new MainAreaWidget({ content });
        widget.id = `synapse-plugin-${scope}-${path.replace(/[^A-Za-z0-9_-]/g, '_')}`;
        widget.title.label = PathExt.basename(path);
        widget.title.caption = `Synapse plugin: ${scope}/${path}`;
        widget.title.icon = synapseIcon;
        widget.title.closable = true;
        panels.set(key, widget);
        app.shell.add(widget, 'main');
      }
      app.shell.activateById(widget.id);
      return widget;
    };

    const sidebar = new SidebarWidget(model, (p: IPluginSummary) => openPlugin(p.scope, p.path));
    sidebar.id = 'synapse-sidebar';
    sidebar.title.icon = synapseIcon;
    sidebar.title.caption = 'Synapse plugins';
    app.shell.add(sidebar, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(sidebar, 'synapse-sidebar');
    }

    const diagnostics = new ManifestDiagnostics(
      editors,
      () => app.shell.activateById(diagnostics.id),
      editor => app.shell.activateById(editor.id)
    );
    diagnostics.id = 'synapse-diagnostics';
    diagnostics.title.icon = synapseIcon;
    diagnostics.title.caption = 'Manifest problems';
    app.shell.add(diagnostics, 'right', { rank: 600 });

    app.commands.addCommand(CommandIDs.openSidebar, {
      label: 'Show Synapse Plugins',
      execute: () => app.shell.activateById(sidebar.id)
    });
    app.commands.addCommand(CommandIDs.openPlugin, {
      label: 'Open Synapse Plugin Panel',
      execute: args => openPlugin((args.scope as Scope) || 'workspace', String(args.path))
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Synapse Plugins',
      execute: () => model.refresh()
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.openSidebar, category: 'Synapse' });
      palette.addItem({ command: CommandIDs.refresh, category: 'Synapse' });
    }

    if (statusBar) {
      const item = new IsolationStatus(() => app.shell.activateById(sidebar.id));
      statusBar.registerStatusItem('synapse-nb:isolation', { item, align: 'left', rank: 100 });
    }

    stream.start();
  }
};

export default plugin;
