//! How an example talks and keeps score: a narrative of sections, notes
//! and checks, printed as it goes and kept for the test, and the verdict
//! that decides the exit status.

use std::fmt::{self, Debug, Display};
use std::future::Future;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Why an example stopped before its end (a server would not start, a key
/// could not be made). Checks that fail do not stop an example; they are
/// counted and make it exit non-zero at the end.
pub struct Failure(String);

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Failure(message.into())
    }
}

impl Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

/// What a run returns: `Err` only when it could not go on.
pub type Outcome = Result<(), Failure>;

/// Adds what was being done to an error.
pub trait Context<T> {
    /// `what: error`.
    fn context(self, what: &str) -> Result<T, Failure>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure(format!("{what}: {e}")))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: &str) -> Result<T, Failure> {
        self.ok_or_else(|| Failure(what.to_owned()))
    }
}

#[derive(Debug, Default)]
struct State {
    lines: Vec<String>,
    checks: usize,
    failures: Vec<String>,
}

/// The printed story of one run, and its score. Cheap to clone; clones
/// share the story.
#[derive(Debug, Clone, Default)]
pub struct Narrative {
    state: Arc<Mutex<State>>,
}

impl Narrative {
    /// An empty narrative.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves whole lines; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, line: String) {
        println!("{line}");
        self.state().lines.push(line);
    }

    /// Starts a section.
    pub fn section(&self, title: impl Display) {
        self.emit(String::new());
        self.emit(format!("== {title}"));
    }

    /// A line of explanation.
    pub fn say(&self, text: impl Display) {
        self.emit(format!("   {text}"));
    }

    /// Records an expected outcome: `[ok] what` when `ok`, else
    /// `[FAILED] what (detail)`. Returns `ok`.
    pub fn check(&self, what: impl Display, ok: bool, detail: impl Display) -> bool {
        let line = if ok {
            format!("[ok] {what}")
        } else {
            format!("[FAILED] {what} ({detail})")
        };
        {
            let mut s = self.state();
            s.checks += 1;
            if !ok {
                s.failures.push(line.clone());
            }
        }
        self.emit(line);
        ok
    }

    /// Checks that `got` equals `want`.
    pub fn check_eq<T: PartialEq + Debug>(&self, what: impl Display, got: T, want: T) -> bool {
        let ok = got == want;
        self.check(what, ok, format_args!("got {got:?}, expected {want:?}"))
    }

    /// Checks an outcome summary (such as `refused -32012
    /// request_signature_required`); the line names the expected outcome:
    /// `[ok] what: want`.
    pub fn expect(&self, what: impl Display, got: impl AsRef<str>, want: impl AsRef<str>) -> bool {
        let (got, want) = (got.as_ref(), want.as_ref());
        self.check(
            format_args!("{what}: {want}"),
            got == want,
            format_args!("got {got}"),
        )
    }

    /// Records an outcome that did not happen.
    pub fn fail(&self, what: impl Display, detail: impl Display) {
        self.check(what, false, detail);
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.state().lines.clone()
    }

    /// The checks that failed.
    pub fn failures(&self) -> Vec<String> {
        self.state().failures.clone()
    }

    /// The verdict of a run: the number of checks when every one passed
    /// and the run reached its end, otherwise why not.
    pub fn verdict(&self, result: &Outcome) -> Result<usize, String> {
        let s = self.state();
        match result {
            Err(e) => Err(format!("stopped early: {e}")),
            Ok(()) if !s.failures.is_empty() => Err(format!(
                "{} of {} checks failed:\n{}",
                s.failures.len(),
                s.checks,
                s.failures.join("\n")
            )),
            Ok(()) if s.checks == 0 => Err("no outcome was checked".into()),
            Ok(()) => Ok(s.checks),
        }
    }
}

/// The `main` of an example: runs `run` on a two-thread runtime, prints
/// the verdict, and exits 0 only if every expected outcome happened.
pub fn main_with<F, Fut>(name: &str, run: F) -> ExitCode
where
    F: FnOnce(Narrative) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let narrative = Narrative::new();
    let result = rt.block_on(run(narrative.clone()));
    // Background servers end with the runtime; do not wait on them long.
    rt.shutdown_timeout(Duration::from_secs(5));
    match narrative.verdict(&result) {
        Ok(checks) => {
            println!();
            println!("{name}: all {checks} expected outcomes happened");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!();
            eprintln!("{name}: FAILED: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an example inside the caller's runtime and returns its narrative
/// and verdict (for tests).
pub async fn run_captured<F, Fut>(run: F) -> (Narrative, Result<usize, String>)
where
    F: FnOnce(Narrative) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let narrative = Narrative::new();
    let result = run(narrative.clone()).await;
    let verdict = narrative.verdict(&result);
    (narrative, verdict)
}
