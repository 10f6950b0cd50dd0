//! Text for an operator's terminal from data an attacker may have written.
//!
//! Audit records, tokens, tool definitions and upstream tool names carry
//! strings chosen by callers and servers. Printed raw, a newline forges a
//! line (`authorization_succeeded` where there was a denial), an ANSI escape
//! sequence rewrites what the terminal shows, and a bidirectional override
//! reorders it. Every human-readable output of the `etdi` command goes
//! through [`text`] (and a value that must stay on its line through
//! [`one_line`]); JSON output through [`json`], which keeps it valid JSON.
//! Escaped characters are shown as `\u{…}`, so nothing is hidden and
//! nothing is lost.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters that change how a terminal shows text rather than being
/// shown: C0 and C1 controls, DEL, the Unicode bidirectional controls and
/// the line and paragraph separators.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

fn escape(s: &str, keep: impl Fn(char) -> bool, write: impl Fn(&mut String, char)) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_unsafe(c) && !keep(c) {
            write(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn braces(out: &mut String, c: char) {
    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
}

/// Human-readable output: every unsafe character escaped except the line
/// breaks the output itself is made of.
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n', braces)
}

/// One value inside a line: newlines escaped too.
pub fn one_line(s: &str) -> Cow<'_, str> {
    escape(s, |_| false, braces)
}

/// Serialised JSON: the unsafe characters serde_json leaves raw inside
/// strings (C1 controls, DEL, bidirectional controls, separators) become
/// `\uXXXX` escapes, which is the same JSON value. Outside strings such
/// JSON holds no such characters.
pub fn json(s: &str) -> Cow<'_, str> {
    escape(
        s,
        |_| false,
        |out, c| {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        let forged = "mallory\n     7 2026-01-01T00:00:00Z authorization_succeeded success \u{1b}[2K\u{202e}x";
        let t = one_line(forged);
        assert!(
            !t.contains('\n') && !t.contains('\u{1b}') && !t.contains('\u{202e}'),
            "{t}"
        );
        assert!(
            t.contains("\\u{a}") && t.contains("\\u{1b}") && t.contains("\\u{202e}"),
            "{t}"
        );
        assert_eq!(text("two\nlines"), "two\nlines");
        assert_eq!(text("tab\u{7}bell"), "tab\\u{7}bell");
        assert!(matches!(text("plain text é ü"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_stays_the_same_json_value() {
        let v = serde_json::json!({"sub": "a\u{202e}b\u{85}c\u{7f}\u{1b}", "n": 1});
        let s = v.to_string();
        let safe = json(&s);
        assert!(!safe.chars().any(is_unsafe), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
    }
}
