//! Output helpers shared by subcommands.

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// Ask for `expected` to be typed back before something that cannot be undone.
/// `what` says what will happen; `untouched` what stays as it is when refused. With no
/// terminal it refuses and points at `--yes`.
pub fn confirm_typed(what: &str, expected: &str, untouched: &str) -> Result<(), String> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "{what}; no terminal to confirm on, so pass --yes to go ahead"
        ));
    }
    eprint!("{what}.\nType {expected:?} to go ahead: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    if line.trim() == expected {
        Ok(())
    } else {
        Err(format!("not confirmed; {untouched}"))
    }
}

/// Print to stderr: the one clear message for unusable input.
pub fn fail(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    crate::EXIT_UNUSABLE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(plural(1, "row", "rows"), "1 row");
        assert_eq!(plural(2000, "row", "rows"), "2,000 rows");
    }
}
