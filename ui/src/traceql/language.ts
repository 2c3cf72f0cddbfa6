// TraceQL for CodeMirror: Grafana's Lezer grammar with highlighting tags.
import { HighlightStyle, LanguageSupport, LRLanguage, syntaxHighlighting } from '@codemirror/language';
import { styleTags, tags as t } from '@lezer/highlight';
import { parser } from '@grafana/lezer-traceql';

const traceqlLanguage = LRLanguage.define({
  name: 'traceql',
  parser: parser.configure({
    props: [
      styleTags({
        String: t.string,
        'Integer Float Duration': t.number,
        Static: t.atom,
        IntrinsicField: t.keyword,
        'AttributeField Identifier': t.propertyName,
        'Resource Span Event Link Instrumentation Parent': t.namespace,
        'FieldOp ComparisonOp ScalarOp': t.compareOperator,
        'And Or Gt Lt Desc Anc Pipe UnionStructuralOp ExperimentalOp': t.logicOperator,
        'Aggregate GroupOperation SelectOperation CoalesceOperation With': t.function(t.variableName),
        'LineComment BlockComment': t.comment,
      }),
    ],
  }),
  languageData: { commentTokens: { line: '//' } },
});

const highlight = HighlightStyle.define([
  { tag: t.string, color: '#0a7d32' },
  { tag: t.number, color: '#1c5fb8' },
  { tag: t.atom, color: '#8a3ab9' },
  { tag: t.keyword, color: '#b35900', fontWeight: '600' },
  { tag: t.propertyName, color: '#005f87' },
  { tag: t.namespace, color: '#7a4a00' },
  { tag: [t.compareOperator, t.logicOperator], color: '#c2185b' },
  { tag: t.function(t.variableName), color: '#6a1b9a' },
  { tag: t.comment, color: '#888', fontStyle: 'italic' },
]);

export function traceql(): LanguageSupport {
  return new LanguageSupport(traceqlLanguage, [syntaxHighlighting(highlight)]);
}
