// Word-level differences for the plan's field diffs: long text (a description) is
// shown as the words removed and added, not two walls of text.

export type DiffPart = { text: string; kind: "same" | "del" | "ins" };

/** Past this many words a side, the whole value is shown replaced (the table is m×n). */
export const MAX_DIFF_WORDS = 2000;

/** Text at least this long is diffed by words; shorter values are shown old → new. */
export const LONG_TEXT = 60;

function words(s: string): string[] {
  // Runs of spaces are tokens of their own and compared exactly: joining the parts
  // gives each text back, and a change of spacing shows.
  return s.match(/\s+|\S+/g) ?? [];
}

/** The parts of `a` and `b`: kept, deleted (only in `a`) and inserted (only in `b`). */
export function wordDiff(a: string, b: string): DiffPart[] {
  const x = words(a);
  const y = words(b);
  if (x.length > MAX_DIFF_WORDS || y.length > MAX_DIFF_WORDS) {
    return [
      ...(a ? [{ text: a, kind: "del" as const }] : []),
      ...(b ? [{ text: b, kind: "ins" as const }] : []),
    ];
  }
  // Longest common subsequence of words, by dynamic programming from the end.
  const n = x.length;
  const m = y.length;
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: DiffPart[] = [];
  const push = (text: string, kind: DiffPart["kind"]) => {
    const last = out[out.length - 1];
    if (last && last.kind === kind) last.text += text;
    else out.push({ text, kind });
  };
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      push(y[j], "same");
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) push(x[i++], "del");
    else push(y[j++], "ins");
  }
  while (i < n) push(x[i++], "del");
  while (j < m) push(y[j++], "ins");
  return out;
}

/** Whether a change is long enough to be shown word by word. */
export function isLong(old: string | null, now: string | null): boolean {
  return (old ?? "").length >= LONG_TEXT || (now ?? "").length >= LONG_TEXT;
}
