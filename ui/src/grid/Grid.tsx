// The virtual grid: a fixed-height body over a scaled spacer, fed by windows of rows
// the Rust side reads from its row index.
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { forwardRef, useEffect, useImperativeHandle, useLayoutEffect, useRef, useState } from "react";
import { backend, BLANK, EDITED, INVALID, WARNING, type FileSummary, type ViewArg } from "../backend";
import { geometry, rowAt, scrollTopFor } from "./scroll";

export const ROW_HEIGHT = 26;
const COL_WIDTH = 150;
const NUM_WIDTH = 84;

export interface GridHandle {
  /** Scroll so the row at this position of the view is at the top. */
  scrollToPosition(pos: number): void;
}

/** A jump into a view that is still loading: applied once the view's row count is known. */
export interface Jump {
  pos: number;
  total: number;
  nonce: number;
}

interface Props {
  file: FileSummary;
  jump?: Jump | null;
  view: ViewArg;
  generation: number;
  selected: { row: number; column: number | null } | null;
  onSelect(row: number, column: number | null): void;
  onEdit(row: number, column: number, value: string): void;
}

export const Grid = forwardRef<GridHandle, Props>(function Grid(props, ref) {
  const { file, view, generation, selected, onSelect, onEdit, jump } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(480);
  const [total, setTotal] = useState(file.rows);
  const [editing, setEditing] = useState<{ row: number; column: number; value: string } | null>(null);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight - ROW_HEIGHT));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const g = geometry(total, ROW_HEIGHT, height);
  const { first, offset } = rowAt(scrollTop, g);
  const count = Math.ceil(height / ROW_HEIGHT) + 2;
  const viewKey = JSON.stringify(view);
  const q = useQuery({
    queryKey: ["rows", file.id, viewKey, first, count, generation, file.rows],
    queryFn: () => backend.rows(file.id, view, first, count),
    placeholderData: keepPreviousData,
  });
  useEffect(() => {
    if (q.data) setTotal(q.data.total);
  }, [q.data]);

  // A jump into another view waits for that view's rows: before, the spacer still has
  // the old view's height and the browser would clamp the scroll.
  const applied = useRef(0);
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!jump || !el || applied.current === jump.nonce || total !== jump.total) return;
    applied.current = jump.nonce;
    const top = scrollTopFor(jump.pos, geometry(total, ROW_HEIGHT, height));
    el.scrollTop = top;
    setScrollTop(top);
  }, [jump, total, height]);

  useImperativeHandle(ref, () => ({
    scrollToPosition(pos: number) {
      const el = scroller.current;
      if (!el) return;
      const top = scrollTopFor(pos, geometry(Math.max(total, pos + 1), ROW_HEIGHT, height));
      el.scrollTop = top;
      setScrollTop(top);
    },
  }));

  const width = NUM_WIDTH + file.header.length * COL_WIDTH;
  const rows = q.data?.rows ?? [];
  return (
    <div className="grid" ref={scroller} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)} data-total={total}>
      <div className="grid-head" style={{ width }}>
        <div className="num">row</div>
        {file.header.map((h, i) => (
          <div key={i} className="cell" title={h}>
            {h}
          </div>
        ))}
      </div>
      <div style={{ height: g.spacer, width, position: "relative" }}>
        <div className="grid-body" style={{ top: scrollTop - offset }}>
          {rows.map((r) => (
            <div
              key={r.row}
              data-row={r.row}
              className={
                "grid-row" +
                (r.status & INVALID ? " invalid" : "") +
                (r.status & BLANK ? " blank" : "") +
                (selected?.row === r.row ? " selected" : "")
              }
              style={{ height: ROW_HEIGHT }}
            >
              <div className="num">{(r.row + 1).toLocaleString("en-US")}</div>
              {file.header.map((_, c) => {
                const f = r.flags[c] ?? 0;
                const cls =
                  "cell" +
                  (f & INVALID ? " bad" : f & WARNING ? " warn" : "") +
                  (f & EDITED ? " edited" : "") +
                  (selected?.row === r.row && selected.column === c ? " focus" : "");
                if (editing && editing.row === r.row && editing.column === c) {
                  return (
                    <input
                      key={c}
                      className="cell editor"
                      autoFocus
                      onFocus={(e) => e.currentTarget.select()}
                      value={editing.value}
                      onChange={(e) => setEditing({ ...editing, value: e.target.value })}
                      onKeyDown={(e) => {
                        if (e.key === "Enter") {
                          onEdit(editing.row, editing.column, editing.value);
                          setEditing(null);
                        } else if (e.key === "Escape") setEditing(null);
                      }}
                      onBlur={() => setEditing(null)}
                    />
                  );
                }
                return (
                  <div
                    key={c}
                    className={cls}
                    data-col={c}
                    title={r.cells[c] ?? ""}
                    onClick={() => onSelect(r.row, c)}
                    onDoubleClick={() => setEditing({ row: r.row, column: c, value: r.cells[c] ?? "" })}
                  >
                    {r.cells[c] ?? ""}
                  </div>
                );
              })}
            </div>
          ))}
        </div>
      </div>
    </div>
  );
});
