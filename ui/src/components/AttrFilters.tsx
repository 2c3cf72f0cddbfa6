// Attribute filter rows: key and value inputs with suggestions from the API.
import { useEffect, useState } from 'react';
import { api } from '../lib/api';
import { ATTR_OPS, type AttrFilter } from '../lib/searchState';

interface Props {
  filters: AttrFilter[];
  keys: string[];
  onChange: (filters: AttrFilter[]) => void;
}

export function AttrFilters({ filters, keys, onChange }: Props) {
  const update = (i: number, patch: Partial<AttrFilter>) =>
    onChange(filters.map((f, j) => (j === i ? { ...f, ...patch } : f)));
  return (
    <div className="attr-filters">
      <datalist id="attr-keys">
        {keys.map((k) => (
          <option key={k} value={k} />
        ))}
      </datalist>
      {filters.map((f, i) => (
        <AttrFilterRow
          key={i}
          index={i}
          filter={f}
          onChange={(patch) => update(i, patch)}
          onRemove={() => onChange(filters.filter((_, j) => j !== i))}
        />
      ))}
      <button type="button" className="link" onClick={() => onChange([...filters, { key: '', op: '=', value: '' }])}>
        + attribute
      </button>
    </div>
  );
}

function AttrFilterRow(props: {
  index: number;
  filter: AttrFilter;
  onChange: (patch: Partial<AttrFilter>) => void;
  onRemove: () => void;
}) {
  const { index, filter, onChange, onRemove } = props;
  const values = useAttributeValues(filter.key);
  const listId = `attr-values-${index}`;
  return (
    <div className="attr-row">
      <input
        aria-label="attribute key"
        placeholder="key"
        list="attr-keys"
        value={filter.key}
        onChange={(e) => onChange({ key: e.target.value })}
      />
      <select aria-label="operator" value={filter.op} onChange={(e) => onChange({ op: e.target.value })}>
        {ATTR_OPS.map((op) => (
          <option key={op}>{op}</option>
        ))}
      </select>
      <input
        aria-label="attribute value"
        placeholder="value"
        list={listId}
        value={filter.value}
        onChange={(e) => onChange({ value: e.target.value })}
      />
      <datalist id={listId}>
        {values.map((v) => (
          <option key={v} value={v} />
        ))}
      </datalist>
      <button type="button" className="icon" title="Remove" onClick={onRemove}>
        ×
      </button>
    </div>
  );
}

function useAttributeValues(key: string): string[] {
  const [values, setValues] = useState<string[]>([]);
  useEffect(() => {
    if (!key) return setValues([]);
    let live = true;
    const timer = setTimeout(() => {
      api.attributeValues(key).then((v) => live && setValues(v), () => live && setValues([]));
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [key]);
  return values;
}
