// The settings screen: the profiles of metasync.toml (edited in a form, saved only when
// the CLI would accept them), each profile's credentials in the OS keychain (only "set"
// or "not set" is ever shown), and a connection test. Also the header's switcher.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import {
  backend,
  refusal,
  type ActiveProfile,
  type ConnectionReport,
  type CredentialKind,
  type ProfileForm,
  type TargetForm,
} from "./backend";
import { blankProfile, blankTarget, errorFor, withBackend, withDialect } from "./profiles";

type Refusal = { message: string; field: string | null };

export function ProfileSwitcher(props: { active: ActiveProfile | undefined; onMessage(m: string): void }) {
  const qc = useQueryClient();
  const view = useQuery({ queryKey: ["settings"], queryFn: backend.settings });
  const select = (name: string) =>
    backend.selectProfile(name || null).then(
      (a) => qc.setQueryData(["active"], a),
      (e) => props.onMessage(refusal(e).message),
    );
  return (
    <span className="profile-switch">
      <select
        aria-label="Profile"
        value={props.active?.name ?? ""}
        // Profiles may have been added by hand or by the CLI since the list was read.
        onFocus={() => void view.refetch()}
        onChange={(e) => void select(e.target.value)}
      >
        <option value="">Embedded default</option>
        {(view.data?.profiles ?? []).map((p) => (
          <option key={p.name} value={p.name} disabled={p.problem !== null}>
            {p.name}
            {p.production ? " (production)" : ""}
          </option>
        ))}
      </select>
      {props.active?.production && (
        <span className="prod-badge" data-testid="production">
          PRODUCTION
        </span>
      )}
    </span>
  );
}

export function Settings(props: { onClose(): void }) {
  const qc = useQueryClient();
  const view = useQuery({ queryKey: ["settings"], queryFn: backend.settings });
  // The profile being edited: a name, "" for a new one, null for none.
  const [editing, setEditing] = useState<string | null>(null);
  const v = view.data;
  return (
    <section className="settings" role="dialog" aria-label="Settings">
      <nav className="settings-list">
        <h2>Profiles</h2>
        {v && (
          <p className="note">
            Kept in <code>{v.path}</code>
            {v.exists ? "" : " (made when you save one)"}; the metasync CLI reads the same file.
          </p>
        )}
        {v?.problem && <div className="message">{v.problem}</div>}
        <ul>
          {(v?.profiles ?? []).map((p) => (
            <li key={p.name}>
              <button
                className={"profile-item" + (editing === p.name ? " active" : "")}
                data-profile={p.name}
                onClick={() => setEditing(p.name)}
                title={p.problem ?? p.target ?? ""}
              >
                <b>{p.name}</b> <span className="note">{p.backend}</span>
                {p.production && <span className="prod-badge">PRODUCTION</span>}
                {p.problem && <span className="errors"> needs a fix</span>}
              </button>
            </li>
          ))}
        </ul>
        <button onClick={() => setEditing("")}>New profile</button>
        <button onClick={props.onClose}>Close settings</button>
      </nav>
      {editing !== null ? (
        <ProfileEditor
          key={editing}
          name={editing || null}
          onSaved={(name) => {
            void qc.invalidateQueries({ queryKey: ["settings"] });
            void qc.invalidateQueries({ queryKey: ["active"] });
            void qc.invalidateQueries({ queryKey: ["profile", name] });
            setEditing(name);
          }}
        />
      ) : (
        <div className="settings-main">
          <p>Choose a profile to edit it, or make a new one.</p>
          <p className="note">
            A profile says where Metasync keeps its files, queues and sync state (this computer, or AWS) and which
            catalog it sends to. Production profiles are marked in red wherever they are chosen.
          </p>
        </div>
      )}
    </section>
  );
}

function Field(props: {
  label: string;
  field: string;
  value: string;
  error: Refusal | null;
  onChange(v: string): void;
  placeholder?: string;
}) {
  const problem = errorFor(props.error, props.field);
  return (
    <label className={problem ? "bad" : ""}>
      {props.label}
      <input
        data-field={props.field}
        aria-invalid={problem !== null}
        value={props.value}
        placeholder={props.placeholder}
        onChange={(e) => props.onChange(e.target.value)}
      />
      {problem && <span className="field-error">{problem}</span>}
    </label>
  );
}

function ProfileEditor(props: { name: string | null; onSaved(name: string): void }) {
  const creating = props.name === null;
  const loaded = useQuery({
    queryKey: ["profile", props.name],
    queryFn: () => (props.name ? backend.profileForm(props.name) : Promise.resolve(blankProfile())),
  });
  const [form, setForm] = useState<ProfileForm | null>(null);
  const [error, setError] = useState<Refusal | null>(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    if (loaded.data && form === null) setForm(loaded.data);
  }, [loaded.data, form]);
  if (loaded.error) return <div className="settings-main message">{refusal(loaded.error).message}</div>;
  if (!form) return null;

  const set = (patch: Partial<ProfileForm>) => {
    setForm({ ...form, ...patch });
    setSaved(false);
  };
  const setTarget = (patch: Partial<TargetForm>) => form.target && set({ target: { ...form.target, ...patch } });
  const save = () =>
    backend.saveProfile(form, creating).then(
      () => {
        setError(null);
        setSaved(true);
        props.onSaved(form.name.trim());
      },
      (e) => setError(refusal(e)),
    );
  const f = (label: string, key: keyof ProfileForm & string, placeholder?: string) => (
    <Field
      label={label}
      field={key}
      value={String(form[key] ?? "")}
      error={error}
      placeholder={placeholder}
      onChange={(v) => set({ [key]: v } as Partial<ProfileForm>)}
    />
  );
  const t = form.target;
  const tf = (label: string, key: keyof TargetForm & string, placeholder?: string) =>
    t && (
      <Field
        label={label}
        field={`target.${key}`}
        value={String(t[key] ?? "")}
        error={error}
        placeholder={placeholder}
        onChange={(v) => setTarget({ [key]: v } as Partial<TargetForm>)}
      />
    );
  return (
    <div className="settings-main">
      <h2>{creating ? "New profile" : `Profile ${props.name}`}</h2>
      {error && (
        <div className="message" role="alert" data-testid="settings-error">
          {error.message}
        </div>
      )}
      {saved && <div className="saved">Saved. The CLI sees it as --profile {form.name}.</div>}
      <div className="form-grid">
        {creating ? f("Name", "name", "staging") : null}
        <label className="check">
          <input
            type="checkbox"
            aria-label="Production"
            checked={form.production}
            onChange={(e) => set({ production: e.target.checked })}
          />
          Production (marked in red; actions that change the catalog ask first)
        </label>
        <label>
          Backend
          <select
            aria-label="Backend"
            value={form.backend}
            onChange={(e) => setForm(withBackend(form, e.target.value as "local" | "aws"))}
          >
            <option value="local">This computer (SQLite and a folder)</option>
            <option value="aws">AWS (S3, SQS, DynamoDB)</option>
          </select>
        </label>
        {form.backend === "aws" ? (
          <>
            {f("Region", "region", "us-east-1 (else from the AWS chain)")}
            {f("Bucket", "bucket")}
            {f("Table", "table")}
            {f("Queue prefix", "queue_prefix")}
            {f("AWS profile of ~/.aws/config", "aws_profile", "optional")}
            {f("Endpoint URL", "endpoint_url", "optional: an emulator")}
            {f("KMS key id", "kms_key_id", "optional")}
          </>
        ) : (
          f("Data folder", "data_dir", "default: the system's data folder")
        )}
        {f("Receives before the dead-letter queue", "max_receive_count", "5")}
      </div>
      <h3>
        <label className="check">
          <input
            type="checkbox"
            aria-label="Has a target"
            checked={t !== null}
            onChange={(e) => set({ target: e.target.checked ? blankTarget("media_manager") : null })}
          />
          Target catalog
        </label>
      </h3>
      {t && (
        <div className="form-grid">
          <label>
            Dialect
            <select
              aria-label="Dialect"
              value={t.dialect}
              onChange={(e) => set({ target: withDialect(t, e.target.value as "media_manager" | "rest") })}
            >
              <option value="media_manager">Media Manager v1 (Basic auth)</option>
              <option value="rest">REST + OAuth2</option>
            </select>
          </label>
          {tf("URL", "url", "https://media.example.org/api/v1")}
          {t.dialect === "rest" ? (
            tf("Token URL", "token_url", "https://…/oauth2/token")
          ) : (
            <label>
              Access
              <select aria-label="Access" value={t.access} onChange={(e) => setTarget({ access: e.target.value })}>
                <option value="">A station's key (the default)</option>
                <option value="station">A station's key</option>
                <option value="pbs">PBS</option>
              </select>
              {errorFor(error, "target.access") && <span className="field-error">{error?.message}</span>}
            </label>
          )}
          {tf("Quota (requests a second)", "quota", "unknown: found out as it goes")}
          {tf("Burst", "burst", "1")}
          {tf("Calls in flight", "concurrency", "8")}
          {tf("Timeout (seconds)", "timeout_seconds", "30")}
          {tf("Retries", "max_retries")}
          {tf("First retry delay (seconds)", "base_delay_seconds")}
        </div>
      )}
      <div className="fix-actions">
        <button className="primary" onClick={() => void save()}>
          {creating ? "Create profile" : "Save profile"}
        </button>
      </div>
      {!creating && props.name && (
        <>
          <Credentials profile={props.name} aws={form.backend === "aws"} />
          <ConnectionTest profile={props.name} />
        </>
      )}
    </div>
  );
}

function Credentials(props: { profile: string; aws: boolean }) {
  const qc = useQueryClient();
  const key = ["credentials", props.profile];
  const status = useQuery({ queryKey: key, queryFn: () => backend.credentialsStatus(props.profile) });
  const [editing, setEditing] = useState<CredentialKind | null>(null);
  const [error, setError] = useState<string | null>(null);
  const s = status.data;
  const row = (kind: CredentialKind, label: string, keyLabel: string) => {
    const isSet = kind === "aws" ? s?.aws : s?.target;
    return (
      <div className="credential" data-kind={kind}>
        <span>{label}:</span>{" "}
        <b className={isSet ? "ok" : "errors"} data-testid={`credentials-${kind}`}>
          {s ? (isSet ? "set" : "not set") : "…"}
        </b>{" "}
        <button onClick={() => setEditing(kind)}>{isSet ? "Replace…" : "Set…"}</button>
        {isSet && (
          <button
            onClick={() =>
              void backend.deleteCredentials(props.profile, kind).then(
                (v) => qc.setQueryData(key, v),
                (e) => setError(refusal(e).message),
              )
            }
          >
            Remove
          </button>
        )}
        {editing === kind && (
          <SecretForm
            keyLabel={keyLabel}
            onCancel={() => setEditing(null)}
            onStore={(k, sec) =>
              backend.setCredentials(props.profile, kind, k, sec).then(
                (v) => {
                  qc.setQueryData(key, v);
                  setEditing(null);
                  setError(null);
                },
                (e) => setError(refusal(e).message),
              )
            }
          />
        )}
      </div>
    );
  };
  return (
    <section className="credentials">
      <h3>Credentials, in this computer's keychain</h3>
      {s?.problem && <div className="message">{s.problem}</div>}
      {error && <div className="message" role="alert">{error}</div>}
      {row("target", "Target key and secret", "Key (or OAuth2 client id)")}
      {props.aws && row("aws", "AWS access keys (else the AWS chain: env, ~/.aws, SSO)", "AWS access key id")}
    </section>
  );
}

/** Key and secret typed once, sent to the keychain, then forgotten. */
function SecretForm(props: { keyLabel: string; onCancel(): void; onStore(key: string, secret: string): Promise<void> }) {
  const [key, setKey] = useState("");
  const [secret, setSecret] = useState("");
  return (
    <form
      className="secret-form"
      onSubmit={(e) => {
        e.preventDefault();
        void props.onStore(key, secret).finally(() => {
          setKey("");
          setSecret("");
        });
      }}
    >
      <input aria-label="Key" placeholder={props.keyLabel} autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} />
      <input
        aria-label="Secret"
        placeholder="Secret"
        type="password"
        autoComplete="off"
        value={secret}
        onChange={(e) => setSecret(e.target.value)}
      />
      <button type="submit">Store in keychain</button>
      <button type="button" onClick={props.onCancel}>
        Cancel
      </button>
    </form>
  );
}

function ConnectionTest(props: { profile: string }) {
  const [report, setReport] = useState<ConnectionReport | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = () => {
    setBusy(true);
    setError(null);
    backend
      .testConnection(props.profile)
      .then(setReport, (e) => setError(refusal(e).message))
      .finally(() => setBusy(false));
  };
  const lines = report ? [...(report.target ? [report.target] : []), ...report.backend] : [];
  return (
    <section className="connection">
      <h3>Connection</h3>
      <button onClick={run} disabled={busy}>
        {busy ? "Testing…" : "Test connection"}
      </button>
      {error && <div className="message" role="alert">{error}</div>}
      {report && (
        <ul className="checks" data-testid="connection-report">
          {report.target === null && <li className="note">This profile has no target.</li>}
          {lines.map((l, i) => (
            <li key={i} className={l.ok ? "ok" : "errors"} data-ok={l.ok}>
              {l.ok ? "✓" : "✗"} <b>{l.what}</b> {l.detail}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
