//! Running commands as named, timed steps, and the few paths every task
//! needs.

use std::env;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    // CARGO_MANIFEST_DIR is xtask/; the workspace is its parent.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(Path::to_path_buf).unwrap_or(dir)
}

/// `cargo` (the one running us, if known) in the workspace root.
pub fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// The steps run so far, with their wall times, for the closing summary.
#[derive(Default)]
pub struct Steps {
    done: Vec<(String, Duration, bool)>,
}

impl Steps {
    /// Runs `cmd` as the step `name`; fails if it exits unsuccessfully.
    pub fn run(&mut self, name: &str, mut cmd: Command) -> Result<(), String> {
        self.time(name, || {
            let status = cmd
                .status()
                .map_err(|e| format!("{name}: could not start: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("{name} failed ({status})"))
            }
        })
    }

    /// Runs `cmd` as the step `name`, echoing its standard output while
    /// reading the libtest summaries in it; fails if it exits unsuccessfully.
    pub fn run_tests(&mut self, name: &str, cmd: Command) -> Result<TestCounts, String> {
        self.time(name, || run_tests(name, cmd))
    }

    /// Times `f` as the step `name`.
    pub fn time<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        println!("==> {name}");
        let start = Instant::now();
        let result = f();
        let took = start.elapsed();
        println!("<== {name}: {:.1}s", took.as_secs_f64());
        self.done.push((name.to_owned(), took, result.is_ok()));
        result
    }

    /// Prints every step with its time and the total.
    pub fn summary(&self, title: &str, total: Duration) {
        println!();
        println!("{title}: step timings");
        for (name, took, ok) in &self.done {
            println!(
                "  {:>7.1}s  {}  {name}",
                took.as_secs_f64(),
                if *ok { "ok    " } else { "FAILED" }
            );
        }
        println!(
            "  {:>7.1}s  total ({:.1} min)",
            total.as_secs_f64(),
            total.as_secs_f64() / 60.0
        );
    }
}

/// What the libtest summaries of one `cargo test` run added up to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TestCounts {
    /// Test binaries (and doc-test runs) that printed a summary.
    pub binaries: usize,
    /// Binaries whose summary showed no test run at all.
    pub empty_binaries: usize,
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl TestCounts {
    /// Adds one `test result: ...` line.
    fn add_summary(&mut self, line: &str) {
        // "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 5 filtered out; finished in 0.01s"
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        let count = |word: &str| -> u64 {
            rest.split(';')
                .filter_map(|part| {
                    let part = part
                        .trim()
                        .trim_start_matches("ok.")
                        .trim_start_matches("FAILED.");
                    let mut it = part.split_whitespace();
                    let n = it.next()?.parse::<u64>().ok()?;
                    (it.next()? == word).then_some(n)
                })
                .sum()
        };
        let (passed, failed, ignored) = (count("passed"), count("failed"), count("ignored"));
        self.binaries += 1;
        if passed + failed == 0 {
            self.empty_binaries += 1;
        }
        self.passed += passed;
        self.failed += failed;
        self.ignored += ignored;
    }
}

fn run_tests(name: &str, mut cmd: Command) -> Result<TestCounts, String> {
    cmd.stdout(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{name}: could not start: {e}"))?;
    let mut counts = TestCounts::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| format!("{name}: reading its output: {e}"))?;
            println!("{line}");
            counts.add_summary(&line);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("{name}: waiting for it: {e}"))?;
    println!(
        "    {name}: {} passed, {} failed, {} ignored in {} test binaries",
        counts.passed, counts.failed, counts.ignored, counts.binaries
    );
    if !status.success() {
        return Err(format!("{name} failed ({status})"));
    }
    Ok(counts)
}

/// Checks that `program --version` runs, naming the missing peer otherwise.
pub fn require_program(program: &str, why: &str) -> Result<(), String> {
    match Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`{program} --version` failed ({s}); {why}")),
        Err(e) => Err(format!("`{program}` cannot be run ({e}); {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{TestCounts, require_program};

    #[test]
    fn a_missing_program_is_an_error_naming_it() {
        let err = require_program("etdi-no-such-peer", "it is needed").unwrap_err();
        assert!(
            err.contains("etdi-no-such-peer") && err.contains("it is needed"),
            "{err}"
        );
        assert!(require_program("cargo", "").is_ok());
    }

    #[test]
    fn libtest_summaries_add_up() {
        let mut c = TestCounts::default();
        c.add_summary("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 5 filtered out; finished in 0.01s");
        c.add_summary("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s");
        c.add_summary("test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s");
        c.add_summary("running 3 tests");
        assert_eq!(
            c,
            TestCounts {
                binaries: 3,
                empty_binaries: 1,
                passed: 15,
                failed: 2,
                ignored: 1,
            }
        );
    }
}
