import { describe, expect, it } from "vitest";
import { geometry, MAX_SPACER_PX, rowAt, scrollTopFor } from "./scroll";

describe("scroll geometry", () => {
  it("is one to one below the cap", () => {
    const g = geometry(1000, 26, 500);
    expect(g.spacer).toBe(26_000);
    expect(g.scale).toBe(1);
    expect(rowAt(260, g)).toEqual({ first: 10, offset: 0 });
    expect(rowAt(270, g)).toEqual({ first: 10, offset: 10 });
  });

  it("scales a million rows under WebKit's height cap and reaches both ends", () => {
    const g = geometry(1_000_000, 26, 600);
    expect(g.spacer).toBe(MAX_SPACER_PX);
    expect(g.spacer).toBeLessThan(33_554_428);
    expect(g.scale).toBeGreaterThan(1);
    expect(rowAt(0, g).first).toBe(0);
    const bottom = rowAt(g.spacer - g.viewport, g);
    // The last screenful: the final row is on it.
    expect(bottom.first + Math.ceil(600 / 26)).toBeGreaterThanOrEqual(999_999);
  });

  it("jumps to any row", () => {
    const g = geometry(1_000_000, 26, 600);
    for (const row of [0, 1, 500_000, 899_999, 999_000]) {
      expect(rowAt(scrollTopFor(row, g), g).first).toBe(row);
    }
  });
});
