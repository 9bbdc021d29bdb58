import { describe, expect, it } from "vitest";
import { fixArg, FIXES } from "./fixes";

describe("fixes", () => {
  it("carries the panel's fields only where a fix takes them", () => {
    expect(fixArg("replace", "–", "-")).toEqual({ kind: "replace", find: "–", with: "-" });
    expect(fixArg("set", "national", "ignored")).toEqual({ kind: "set", value: "national" });
    expect(fixArg("trim", "ignored", "ignored")).toEqual({ kind: "trim" });
  });

  it("lists every fix the engine offers once", () => {
    const kinds = FIXES.map((f) => f.kind);
    expect(new Set(kinds).size).toBe(8);
  });
});
