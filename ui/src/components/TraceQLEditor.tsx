// The TraceQL box: CodeMirror with highlighting, completion and errors marked where the server says they are.
import { useEffect, useRef } from 'react';
import { autocompletion, closeBrackets } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { syntaxTree } from '@codemirror/language';
import { linter, setDiagnostics, type Diagnostic } from '@codemirror/lint';
import { EditorState } from '@codemirror/state';
import { EditorView, keymap, placeholder } from '@codemirror/view';
import { traceql } from '../traceql/language';
import { traceqlCompletion } from '../traceql/complete';
import { errorOffset } from '../traceql/errors';

interface Props {
  value: string;
  error: string | null;
  attributeKeys: string[];
  onChange: (q: string) => void;
  onRun: (q: string) => void;
}

/** The server's error (while the query is the one it was about) and the grammar's own syntax errors. */
function diagnose(v: EditorView, server: { doc: string; message: string } | null): Diagnostic[] {
  const doc = v.state.doc.toString();
  const out: Diagnostic[] = [];
  if (server && server.doc === doc) {
    const at = errorOffset(doc, server.message) ?? 0;
    out.push({ from: at, to: Math.min(at + 1, doc.length), severity: 'error', message: server.message });
  }
  syntaxTree(v.state).iterate({
    enter: (n) => {
      if (n.type.isError && out.length < 3) {
        out.push({ from: n.from, to: Math.max(n.to, n.from), severity: 'warning', message: 'syntax error' });
      }
    },
  });
  return out;
}

export function TraceQLEditor({ value, error, attributeKeys, onChange, onRun }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const latest = useRef({ onChange, onRun, attributeKeys, error: null as null | { doc: string; message: string } });
  latest.current.onChange = onChange;
  latest.current.onRun = onRun;
  latest.current.attributeKeys = attributeKeys;

  useEffect(() => {
    const serverAndSyntaxErrors = linter((v) => diagnose(v, latest.current.error), { delay: 300 });
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: value,
        extensions: [
          history(),
          closeBrackets(),
          keymap.of([
            { key: 'Mod-Enter', run: (ed) => (latest.current.onRun(ed.state.doc.toString()), true) },
            ...defaultKeymap,
            ...historyKeymap,
          ]),
          traceql(),
          autocompletion({ override: [traceqlCompletion(() => latest.current.attributeKeys)] }),
          serverAndSyntaxErrors,
          placeholder('{ resource.service.name = "checkout" && span.http.status_code >= 500 }'),
          EditorView.lineWrapping,
          EditorView.updateListener.of((u) => u.docChanged && latest.current.onChange(u.state.doc.toString())),
        ],
      }),
    });
    view.current = v;
    return () => v.destroy();
    // The editor is created once; later prop changes are pushed in by the effects below.
  }, []);

  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== value) {
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
    }
  }, [value]);

  useEffect(() => {
    const v = view.current;
    latest.current.error = error && v ? { doc: v.state.doc.toString(), message: error } : null;
    // The linter only runs after edits; a new server error must be shown now.
    if (v) v.dispatch(setDiagnostics(v.state, diagnose(v, latest.current.error)));
  }, [error]);

  // The line the server points at, with a caret under the column.
  const pos = error ? /line (\d+),\s*col(?:umn)? (\d+)/i.exec(error) : null;
  const line = pos ? value.split('\n')[Number(pos[1]) - 1] : undefined;
  return (
    <div className="traceql">
      <div className="traceql-editor" ref={host} data-testid="traceql-editor" />
      <div className="hint">Ctrl+Enter runs the query; Ctrl+Space completes.</div>
      {error && (
        <div className="traceql-error" role="alert">
          {pos && line !== undefined && (
            <pre className="caret">
              {line}
              {'\n'}
              {' '.repeat(Math.max(0, Math.min(Number(pos[2]) - 1, line.length)))}^
            </pre>
          )}
          {error}
        </div>
      )}
    </div>
  );
}
