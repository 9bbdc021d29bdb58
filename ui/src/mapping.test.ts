import { describe, expect, it } from "vitest";
import type { MappingView } from "./backend";
import { chosenTwice, currentType, fieldsOf, initialChoices, missingRequired, opensByItself } from "./mapping";

const view: MappingView = {
  entity_type: null,
  profile: null,
  unmapped_required: [],
  types: [
    {
      entity_type: "show",
      key: "show_key",
      fields: [
        { name: "show_key", required: true },
        { name: "slug", required: true },
        { name: "title", required: true },
        { name: "language", required: false },
      ],
    },
    { entity_type: "season", key: "season_key", fields: [{ name: "season_key", required: true }, { name: "show_key", required: true }] },
  ],
  columns: [
    { index: 0, header: "Show ID", sample: "SH1", mapped: null, candidates: [{ field: "show_key", score: 0.55 }] },
    { index: 1, header: "slug", sample: "nova", mapped: "slug", candidates: [{ field: "slug", score: 1 }] },
    { index: 2, header: "Program Title", sample: "NOVA", mapped: null, candidates: [{ field: "title", score: 0.95 }] },
    { index: 3, header: "Name", sample: "x", mapped: null, candidates: [{ field: "title", score: 0.95 }] },
  ],
};

describe("mapping editor", () => {
  it("chooses exact names and strong suggestions, each field once", () => {
    expect(initialChoices(view)).toEqual({ 0: "", 1: "slug", 2: "title", 3: "" });
  });

  it("follows the type: chosen, else the key column mapped, else detected", () => {
    const c = initialChoices(view);
    expect(currentType(view, c, "")).toBe(null);
    expect(currentType(view, { ...c, 0: "show_key" }, "")).toBe("show");
    expect(currentType(view, { ...c, 0: "season_key" }, "")).toBe("season");
    expect(currentType(view, c, "season")).toBe("season");
    expect(fieldsOf(view, "season").map((f) => f.name)).toEqual(["season_key", "show_key"]);
    expect(fieldsOf(view, null).every((f) => !f.required)).toBe(true);
  });

  it("lists the required fields still missing and fields chosen twice", () => {
    const c = initialChoices(view);
    expect(missingRequired(view, c, null)[0]).toContain("a key column");
    expect(missingRequired(view, c, "show")).toEqual(["show_key"]);
    expect(missingRequired(view, { ...c, 0: "show_key" }, "show")).toEqual([]);
    expect(chosenTwice({ ...c, 3: "title" })).toEqual(["title"]);
  });

  it("opens by itself only for a file that needs it, has no profile and is checked", () => {
    const file = { needs_mapping: true, mapping_profile: null, checking: false };
    expect(opensByItself(file)).toBe(true);
    expect(opensByItself({ ...file, needs_mapping: false })).toBe(false);
    expect(opensByItself({ ...file, mapping_profile: "/x.toml" })).toBe(false);
    expect(opensByItself({ ...file, checking: true })).toBe(false);
  });
});
