//! The demo's report: each step with a plain-language story, what had to
//! happen and what did, printed as text for people (as the steps finish)
//! or as one JSON document for scripts.

use serde_json::{Value, json};

/// What a step is, known before it runs.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo {
    /// Stable machine name.
    pub id: &'static str,
    /// One-line title.
    pub title: &'static str,
    /// What is tried, in one sentence (shown when the step fails).
    pub tried: &'static str,
    /// What must happen for the step to pass.
    pub expected: &'static str,
}

/// How a step that behaved as expected went.
#[derive(Debug, Clone)]
pub struct Pass {
    /// One or two sentences: what was tried, what ETDI did, why that is right.
    pub story: String,
    /// The evidence: exact codes, reasons, counts.
    pub observed: String,
    /// The same evidence as data.
    pub details: Value,
}

/// A step's result: `Err` holds what was observed instead.
pub type Outcome = Result<Pass, String>;

/// The demo's steps, in order.
pub const STEPS: [StepInfo; 7] = [
    StepInfo {
        id: "discover",
        title: "The agent checks the tools before it uses them",
        tried: "The agent lists the server's tools, verifies each provider signature and pins what it approves.",
        expected: "both tools verified (issuer com.example), approved by the rule and pinned in the approval file",
    },
    StepInfo {
        id: "signed_call",
        title: "A legitimate, signed call is allowed",
        tried: "The agent calls read_file with its bearer token and an ES256 request signature.",
        expected: "the tool runs and the audit log shows the signature, replay and authorization checks passed",
    },
    StepInfo {
        id: "missing_scope",
        title: "A call without the needed scope is refused",
        tried: "The agent, holding a read-only token, calls write_file (which needs files:write).",
        expected: "error -32010 with reason missing_permissions naming files:write",
    },
    StepInfo {
        id: "call_depth",
        title: "A call chain that is too long is refused",
        tried: "read_file (max call depth 2) is called through one relaying tool, then through two.",
        expected: "one relay allowed; two relays refused with error -32014, call_depth_exceeded (depth 3, max 2)",
    },
    StepInfo {
        id: "replay",
        title: "A replayed request is refused",
        tried: "The same signed request (same signature, same nonce) is sent to the server twice.",
        expected: "the first is served; the second gets error -32013 with reason replay",
    },
    StepInfo {
        id: "rug_pull",
        title: "A silent change to a tool is blocked (rug pull)",
        tried: "The server starts advertising read_file with a rewritten description under the same version 1.0.0.",
        expected: "discovery blocks read_file (version reuse), hides it from the model and refuses the call locally with error -32015",
    },
    StepInfo {
        id: "audit",
        title: "The audit log is complete and tamper-evident",
        tried: "The server's and the agent's audit logs are checked with the etdi-audit verifier, and one record is edited in a copy.",
        expected: "both hash chains and their signed checkpoints verify, each denial is recorded once, and the edit is detected",
    },
];

/// Prints one line (and its newline) on standard output. A closed output
/// (a reader that went away) ends printing quietly instead of panicking; the
/// exit status still tells the outcome.
macro_rules! say {
    ($($arg:tt)*) => {
        say(&format!($($arg)*))
    };
}

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", crate::terminal::text(line));
}

/// Text width of the report.
const WIDTH: usize = 92;
/// Indentation of a step's body.
const INDENT: &str = "       ";

/// Wraps `text` at [`WIDTH`], every line starting with `indent`.
pub fn wrap(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.len() + 1 + word.len() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(line.trim_end());
    out
}

/// Collects step results; prints each at once in text mode.
pub struct Report {
    json: bool,
    steps: Vec<Value>,
    failed: Vec<&'static str>,
}

impl Report {
    /// An empty report.
    pub fn new(json: bool) -> Self {
        Report {
            json,
            steps: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Prints the lines before the first step (text mode only).
    pub fn preamble(&self, text: &str) {
        if !self.json {
            say!("{text}");
        }
    }

    /// Records (and in text mode prints) the result of step `info`.
    pub fn step(&mut self, info: &StepInfo, outcome: Outcome) {
        let number = self.steps.len() + 1;
        let passed = outcome.is_ok();
        let (story, observed, details) = match outcome {
            Ok(p) => (p.story, p.observed, p.details),
            Err(e) => (info.tried.to_owned(), e, Value::Null),
        };
        if !passed {
            self.failed.push(info.id);
        }
        if !self.json {
            let mark = if passed { "PASS" } else { "FAIL" };
            say!("[{mark}] {number}. {}", info.title);
            say!("{}", wrap(&story, INDENT));
            if !passed {
                say!("{}", wrap(&format!("expected: {}", info.expected), INDENT));
            }
            let label = if passed { "evidence" } else { "observed" };
            say!("{}\n", wrap(&format!("{label}: {observed}"), INDENT));
        }
        self.steps.push(json!({
            "number": number,
            "id": info.id,
            "title": info.title,
            "passed": passed,
            "story": story,
            "expected": info.expected,
            "observed": observed,
            "details": details,
        }));
    }

    /// Reports every step not reported yet as failed because it could not
    /// run, for `why`: said once in text, recorded with each step in JSON.
    pub fn fill_remaining(&mut self, why: &str) {
        let first = self.steps.len();
        if first >= STEPS.len() {
            return;
        }
        if !self.json {
            say!("{}\n", wrap(&format!("etdi demo stopped: {why}"), ""));
        }
        for info in STEPS.iter().skip(first) {
            let number = self.steps.len() + 1;
            if !self.json {
                say!("[FAIL] {number}. {} (not run)", info.title);
            }
            self.failed.push(info.id);
            self.steps.push(json!({
                "number": number,
                "id": info.id,
                "title": info.title,
                "passed": false,
                "story": info.tried,
                "expected": info.expected,
                "observed": format!("not run: {why}"),
                "details": Value::Null,
            }));
        }
        if !self.json {
            say("");
        }
    }

    /// True when every step passed.
    pub fn all_passed(&self) -> bool {
        self.failed.is_empty() && self.steps.len() == STEPS.len()
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        let failed = self.failed.len();
        let passed = self.steps.len() - failed;
        if self.all_passed() {
            format!(
                "{passed} passed, 0 failed: ETDI allowed the legitimate signed call, refused the \
                 missing scope, the over-long call chain, the replay and the rug pull, and kept a \
                 verifiable audit log of every decision."
            )
        } else {
            format!(
                "{passed} passed, {failed} failed ({}); each failed step says what \
                 happened instead.",
                self.failed.join(", ")
            )
        }
    }

    /// Prints the end of the report: the summary line, or in JSON mode the
    /// whole report with `environment`.
    pub fn finish(&self, environment: Value) {
        let passed = self.steps.len() - self.failed.len();
        if self.json {
            say!(
                "{}",
                json!({
                    "demo": "etdi",
                    "ok": self.all_passed(),
                    "passed": passed,
                    "failed": self.failed.len(),
                    "summary": self.summary(),
                    "environment": environment,
                    "steps": self.steps,
                })
            );
        } else {
            say!("{}", wrap(&self.summary(), ""));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_words_and_indent() {
        let text = "word ".repeat(40);
        let out = wrap(&text, "  ");
        assert!(out.lines().all(|l| l.starts_with("  ") && l.len() <= WIDTH));
        assert_eq!(out.split_whitespace().count(), 40);
    }

    #[test]
    fn step_ids_are_unique() {
        let mut ids: Vec<&str> = STEPS.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), STEPS.len());
    }
}
