import { beforeEach, describe, expect, it, vi } from "vitest";

const calls: { cmd: string; args: unknown }[] = [];
let answer: unknown = null;
vi.mock("@tauri-apps/api/core", () => ({
  invoke: (cmd: string, args?: unknown) => {
    calls.push({ cmd, args });
    return Promise.resolve(answer);
  },
  Channel: class {
    onmessage: ((m: unknown) => void) | null = null;
  },
}));

import { backend, EDITED, INVALID } from "./index";
import { decodeWindow } from "./rows";

/** A window as the Rust side encodes it. */
function encode(total: number, rows: { row: number; status: number; cells: [number, string][] }[]): ArrayBuffer {
  const parts: number[] = [];
  const u32 = (x: number) => parts.push(x & 255, (x >> 8) & 255, (x >> 16) & 255, (x >>> 24) & 255);
  u32(total);
  u32(rows.length);
  for (const r of rows) {
    u32(r.row);
    parts.push(r.status, r.cells.length & 255, r.cells.length >> 8);
    for (const [flags, text] of r.cells) {
      const b = new TextEncoder().encode(text);
      parts.push(flags);
      u32(b.length);
      parts.push(...b);
    }
  }
  return new Uint8Array(parts).buffer;
}

describe("backend", () => {
  beforeEach(() => {
    calls.length = 0;
  });

  it("decodes a window of rows, flags and UTF-8 included", async () => {
    answer = encode(1_000_000, [
      { row: 899_999, status: INVALID, cells: [[0, "EP899999"], [INVALID, "Prédateurs, «le retour»"]] },
      { row: 900_000, status: EDITED, cells: [[EDITED, ""]] },
    ]);
    const w = await backend.rows(7, { kind: "invalid" }, 10, 2);
    expect(calls[0]).toEqual({ cmd: "workbench_rows", args: { id: 7, view: { kind: "invalid" }, start: 10, count: 2 } });
    expect(w.total).toBe(1_000_000);
    expect(w.rows[0].row).toBe(899_999);
    expect(w.rows[0].cells).toEqual(["EP899999", "Prédateurs, «le retour»"]);
    expect(w.rows[0].flags).toEqual([0, INVALID]);
    expect(w.rows[1].flags[0] & EDITED).toBe(EDITED);
  });

  it("names each command and argument as the Rust side expects", async () => {
    answer = 1;
    await backend.edit(1, 5, 2, "x");
    await backend.applyFix(1, { kind: "replace", find: "a", with: "b" }, { column: 2, code: null });
    await backend.nextError(1, null, true);
    expect(calls.map((c) => c.cmd)).toEqual(["workbench_edit", "workbench_apply_fix", "workbench_next_error"]);
    expect(calls[0].args).toEqual({ id: 1, row: 5, column: 2, value: "x" });
    expect(calls[2].args).toEqual({ id: 1, from: null, forward: true });
  });

  it("sends the operations room's arguments as the Rust side names them", async () => {
    answer = null;
    const updates: unknown[] = [];
    await backend.sync({ batch_size: 10, limit: 5, rank_by: "ordinal", confirm: null }, (u) => updates.push(u));
    await backend.retry({ kind: "record", record: "episode#E1" }, [{ field: "title", value: "Bats" }]);
    await backend.discard({ kind: "code", code: "http_400" }, "a duplicate");
    await backend.exportRun("r1");
    expect(calls.map((c) => c.cmd)).toEqual(["operations_sync", "triage_retry", "triage_discard", "run_export"]);
    const sync = calls[0].args as { form: unknown; onUpdate: { onmessage: (m: unknown) => void } };
    expect(sync.form).toEqual({ batch_size: 10, limit: 5, rank_by: "ordinal", confirm: null });
    sync.onUpdate.onmessage({ stage: "working" });
    expect(updates).toEqual([{ stage: "working" }]);
    expect(calls[1].args).toEqual({ target: { kind: "record", record: "episode#E1" }, edits: [{ field: "title", value: "Bats" }] });
    expect(calls[2].args).toEqual({ target: { kind: "code", code: "http_400" }, reason: "a duplicate" });
    expect(calls[3].args).toEqual({ id: "r1" });
  });

  it("reads an empty window", () => {
    expect(decodeWindow(encode(0, []))).toEqual({ total: 0, rows: [] });
  });
});
