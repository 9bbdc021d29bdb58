// The settings form's logic: backends and dialects switched, refusals pointed at fields.
import { describe, expect, it } from "vitest";
import { blankProfile, blankTarget, errorFor, withBackend, withDialect } from "./profiles";

describe("the settings form", () => {
  it("names a new aws profile's resources after it, and never overwrites typed ones", () => {
    const aws = withBackend({ ...blankProfile(), name: "Staging_2" }, "aws");
    expect([aws.bucket, aws.table, aws.queue_prefix]).toEqual(["metasync-staging-2", "metasync-staging-2", "metasync-staging-2"]);
    const typed = withBackend({ ...blankProfile(), name: "s", bucket: "ours" }, "aws");
    expect(typed.bucket).toBe("ours");
    expect(typed.table).toBe("");
  });

  it("drops what the other dialect alone uses", () => {
    const rest = withDialect({ ...blankTarget("media_manager"), access: "pbs" }, "rest");
    expect(rest.access).toBe("");
    const mm = withDialect({ ...blankTarget("rest"), token_url: "https://x/token" }, "media_manager");
    expect(mm.token_url).toBe("");
  });

  it("shows a refusal under the field it names, and only there", () => {
    const e = { message: "metasync.toml: profile s: bucket: an S3 bucket name is …", field: "bucket" };
    expect(errorFor(e, "bucket")).toBe(e.message);
    expect(errorFor(e, "table")).toBeNull();
    expect(errorFor(null, "bucket")).toBeNull();
  });
});
