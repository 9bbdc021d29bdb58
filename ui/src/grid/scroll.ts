// Scroll geometry of the virtual grid. WebKitGTK caps an element's height at
// 33,554,428 px, so past MAX_SPACER_PX the scroll range is scaled: the scrollbar spans
// the whole file, and one pixel of scrollbar covers more than one pixel of rows.

/** Well under WebKit's cap. */
export const MAX_SPACER_PX = 15_000_000;

export interface Geometry {
  rows: number;
  rowHeight: number;
  viewport: number;
  /** Height of the scrolled spacer. */
  spacer: number;
  /** Virtual pixels per scroll pixel (1 until the cap is reached). */
  scale: number;
}

export function geometry(rows: number, rowHeight: number, viewport: number): Geometry {
  const full = rows * rowHeight;
  const spacer = Math.min(full, MAX_SPACER_PX);
  const range = Math.max(0, spacer - viewport);
  const fullRange = Math.max(0, full - viewport);
  return { rows, rowHeight, viewport, spacer, scale: range > 0 ? fullRange / range : 1 };
}

/** The first visible row and how far it is scrolled past. */
export function rowAt(scrollTop: number, g: Geometry): { first: number; offset: number } {
  const virtual = Math.max(0, scrollTop) * g.scale;
  const first = Math.min(Math.floor(virtual / g.rowHeight), Math.max(0, g.rows - 1));
  return { first, offset: virtual - first * g.rowHeight };
}

/** The scroll position that shows `row` at the top. */
export function scrollTopFor(row: number, g: Geometry): number {
  const r = Math.max(0, Math.min(row, g.rows - 1));
  return (r * g.rowHeight) / g.scale;
}
