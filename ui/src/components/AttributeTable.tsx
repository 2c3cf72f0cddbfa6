// A titled key/value table; nothing is shown for an empty list.
import type { Attr } from '../lib/model';

export function AttributeTable({ title, attrs }: { title: string; attrs: Attr[] }) {
  if (attrs.length === 0) return null;
  return (
    <section className="attr-table">
      <h4>{title}</h4>
      <table>
        <tbody>
          {attrs.map((a, i) => (
            <tr key={`${a.key}-${i}`}>
              <th>{a.key}</th>
              <td>{a.value}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
