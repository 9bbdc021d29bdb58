// The settings form's logic, apart from React: a blank profile, switching its backend
// (the other backend's fields stay in the form but are not saved) or its dialect (what
// only the other dialect uses is cleared), and which input a refusal points at.
import type { BackendChoice, DialectChoice, ProfileForm, TargetForm } from "./backend";

export function blankTarget(dialect: DialectChoice): TargetForm {
  return {
    dialect,
    access: "",
    url: "",
    token_url: "",
    quota: "",
    burst: "",
    concurrency: "",
    timeout_seconds: "",
    max_retries: "",
    base_delay_seconds: "",
  };
}

export function blankProfile(): ProfileForm {
  return {
    name: "",
    production: false,
    backend: "local",
    data_dir: "",
    region: "",
    endpoint_url: "",
    aws_profile: "",
    bucket: "",
    table: "",
    queue_prefix: "",
    kms_key_id: "",
    max_receive_count: "",
    target: blankTarget("media_manager"),
  };
}

export function withBackend(form: ProfileForm, backend: BackendChoice): ProfileForm {
  // A new aws profile names its resources after the profile, as staff usually do.
  if (backend === "aws" && form.backend !== "aws" && form.name && !form.bucket && !form.table && !form.queue_prefix) {
    const base = `metasync-${form.name.toLowerCase().replace(/[^a-z0-9-]/g, "-")}`;
    return { ...form, backend, bucket: base, table: base, queue_prefix: base };
  }
  return { ...form, backend };
}

export function withDialect(target: TargetForm, dialect: DialectChoice): TargetForm {
  // Station or PBS access is Media Manager's; the token endpoint is OAuth2's.
  return dialect === "rest" ? { ...target, dialect, access: "" } : { ...target, dialect, token_url: "" };
}

/** The message under `field` when the refusal names it. */
export function errorFor(error: { message: string; field: string | null } | null, field: string): string | null {
  return error && error.field === field ? error.message : null;
}
