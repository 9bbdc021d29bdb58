// Word diffs of long text in the plan.
import { describe, expect, it } from "vitest";
import { isLong, wordDiff, MAX_DIFF_WORDS } from "./diff";

const join = (parts: { text: string; kind: string }[], keep: string[]) =>
  parts.filter((p) => keep.includes(p.kind)).map((p) => p.text).join("");

describe("word diffs", () => {
  it("keeps the common words and marks the changed ones", () => {
    const a = "The crew follows the river north to the sea.";
    const b = "The crew follows the great river south to the sea.";
    const parts = wordDiff(a, b);
    expect(join(parts, ["same", "del"])).toBe(a);
    expect(join(parts, ["same", "ins"])).toBe(b);
    expect(parts.filter((p) => p.kind === "del").map((p) => p.text.trim())).toEqual(["north"]);
    expect(parts.filter((p) => p.kind === "ins").map((p) => p.text.trim())).toEqual(["great", "south"]);
  });

  it("gives both texts back exactly, words dropped or added at the ends and spacing too", () => {
    const cases = [
      ["x foo bar", "x foo"],
      ["x foo", "x foo bar"],
      [" lead", "lead"],
      ["a  b", "a b"],
      ["a\tb", "a b"],
      ["", "all new"],
      ["all gone", ""],
    ];
    for (const [a, b] of cases) {
      const parts = wordDiff(a, b);
      expect(join(parts, ["same", "del"])).toBe(a);
      expect(join(parts, ["same", "ins"])).toBe(b);
      if (a !== b) expect(parts.some((p) => p.kind !== "same")).toBe(true);
    }
  });

  it("shows a whole replacement past the size it diffs", () => {
    const long = "w ".repeat(MAX_DIFF_WORDS + 1);
    expect(wordDiff(long, "x")).toEqual([
      { text: long, kind: "del" },
      { text: "x", kind: "ins" },
    ]);
    expect(wordDiff("", "new text")).toEqual([{ text: "new text", kind: "ins" }]);
  });

  it("diffs only long text", () => {
    expect(isLong("NOVA", "Nova")).toBe(false);
    expect(isLong(null, "x".repeat(60))).toBe(true);
  });
});
