// Decodes the binary row windows `workbench_rows` sends (see encode_window in
// src-tauri/crates/runtime/src/workbench.rs): little-endian, UTF-8 cells.

/** Row and cell status bits (the engine's `workbench::status`). */
export const WARNING = 1;
export const INVALID = 2;
export const EDITED = 4;
export const BLANK = 8;

export interface GridRow {
  /** 0-based data row in the file. */
  row: number;
  status: number;
  cells: string[];
  flags: number[];
}

export interface RowWindow {
  /** Rows in the view the window was taken from. */
  total: number;
  rows: GridRow[];
}

const utf8 = new TextDecoder();

export function decodeWindow(buf: ArrayBuffer): RowWindow {
  const v = new DataView(buf);
  const bytes = new Uint8Array(buf);
  let at = 0;
  const u32 = () => {
    const x = v.getUint32(at, true);
    at += 4;
    return x;
  };
  const total = u32();
  const count = u32();
  const rows: GridRow[] = [];
  for (let i = 0; i < count; i++) {
    const row = u32();
    const status = v.getUint8(at);
    const n = v.getUint16(at + 1, true);
    at += 3;
    const cells: string[] = [];
    const flags: number[] = [];
    for (let c = 0; c < n; c++) {
      flags.push(v.getUint8(at));
      at += 1;
      const len = u32();
      cells.push(utf8.decode(bytes.subarray(at, at + len)));
      at += len;
    }
    rows.push({ row, status, cells, flags });
  }
  return { total, rows };
}
