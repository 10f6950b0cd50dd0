//! `etdi-fuzz`: the stable driver of the fuzz targets.
//!
//! ```text
//! etdi-fuzz smoke [--seconds N] [--seed S] [TARGET...]   bounded run per target
//! etdi-fuzz replay TARGET FILE...                        run saved inputs once
//! etdi-fuzz write-seeds                                  regenerate fuzz/corpus/*/
//! etdi-fuzz list                                         the targets
//! ```
//!
//! A smoke run replays the committed corpus of each target (failing if it
//! no longer contains the fixture's current seeds), then feeds the target
//! mutated, spliced and random inputs until its time is up. Any panic is a
//! finding: the input is saved under `target/etdi-fuzz/crashes/` and the
//! run fails. A single input running longer than the watchdog limit is a
//! finding too. Runs are deterministic for a given `--seed` (the number of
//! inputs depends on the machine's speed).

use std::collections::BTreeMap;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etdi_fuzz::mutate::{self, Rng};
use etdi_fuzz::{TARGETS, Target};

/// Files in a corpus directory with this prefix are regression inputs
/// (kept by `write-seeds`); all others are regenerated seeds.
const REGRESSION_PREFIX: &str = "regression-";
/// Longest a single input may run before the watchdog calls it a hang.
const HANG_LIMIT: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("smoke") => smoke(args.get(1..).unwrap_or_default()),
        Some("replay") => replay(args.get(1..).unwrap_or_default()),
        Some("write-seeds") => write_seeds(),
        Some("list") => {
            for t in TARGETS {
                println!("{:<18} {}", t.name, t.about);
            }
            Ok(())
        }
        _ => Err("usage: etdi-fuzz smoke [--seconds N] [--seed S] [TARGET...] | replay TARGET FILE... | write-seeds | list".into()),
    };
    etdi_fuzz::targets::audit_log::cleanup();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("etdi-fuzz: {e}");
            ExitCode::FAILURE
        }
    }
}

fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_dir(target: &Target) -> PathBuf {
    package_dir().join("corpus").join(target.name)
}

fn crash_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => package_dir().join("../target"),
    }
    .join("etdi-fuzz/crashes")
}

fn find(name: &str) -> Result<&'static Target, String> {
    etdi_fuzz::target(name).ok_or_else(|| {
        let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        format!("no target `{name}`; targets: {}", names.join(", "))
    })
}

/// The corpus files of `target`, by file name.
fn load_corpus(target: &Target) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let dir = corpus_dir(target);
    let entries = fs::read_dir(&dir).map_err(|e| {
        format!(
            "{}: {e} (run `cargo xtask fuzz --write-seeds`)",
            dir.display()
        )
    })?;
    let mut out = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        if path.is_file() {
            let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            out.insert(entry.file_name().to_string_lossy().into_owned(), bytes);
        }
    }
    Ok(out)
}

fn write_seeds() -> Result<(), String> {
    for target in TARGETS {
        let dir = corpus_dir(target);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (name, _) in load_corpus(target)? {
            if !name.starts_with(REGRESSION_PREFIX) {
                let path = dir.join(&name);
                fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let seeds = (target.seeds)();
        for (name, bytes) in &seeds {
            let path = dir.join(name);
            fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        println!(
            "{}: {} seeds in {}",
            target.name,
            seeds.len(),
            dir.display()
        );
    }
    Ok(())
}

fn replay(args: &[String]) -> Result<(), String> {
    let (Some(name), files) = (args.first(), args.get(1..).unwrap_or_default()) else {
        return Err("usage: etdi-fuzz replay TARGET FILE...".into());
    };
    let target = find(name)?;
    for file in files {
        let bytes = fs::read(file).map_err(|e| format!("{file}: {e}"))?;
        println!("{}: {file} ({} bytes)", target.name, bytes.len());
        (target.run)(&bytes);
    }
    println!("{}: {} inputs, no finding", target.name, files.len());
    Ok(())
}

struct SmokeOptions {
    seconds: u64,
    seed: u64,
    targets: Vec<&'static Target>,
}

fn parse_smoke(args: &[String]) -> Result<SmokeOptions, String> {
    let mut o = SmokeOptions {
        seconds: 15,
        seed: 0x00e7_d1f0_22ed,
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |what: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{what} needs a number"))
        };
        match a.as_str() {
            "--seconds" => o.seconds = number("--seconds")?,
            "--seed" => o.seed = number("--seed")?,
            name => o.targets.push(find(name)?),
        }
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.iter().collect();
    }
    Ok(o)
}

/// What the watchdog sees: when the current input started (ms since the
/// run began, 0 when idle) and the input itself.
struct Current {
    started_ms: AtomicU64,
    input: Mutex<(String, Vec<u8>)>,
    epoch: Instant,
}

fn smoke(args: &[String]) -> Result<(), String> {
    let o = parse_smoke(args)?;
    let current = Arc::new(Current {
        started_ms: AtomicU64::new(0),
        input: Mutex::new((String::new(), Vec::new())),
        epoch: Instant::now(),
    });
    watchdog(Arc::clone(&current));
    let message: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let default_hook = panic::take_hook();
    {
        let message = Arc::clone(&message);
        panic::set_hook(Box::new(move |info| {
            if let Ok(mut m) = message.lock() {
                *m = Some(info.to_string());
            }
            default_hook(info);
        }));
    }

    println!(
        "fuzz smoke: {} targets, {} s each, seed {}",
        o.targets.len(),
        o.seconds,
        o.seed
    );
    let mut findings = Vec::new();
    let mut total_inputs = 0u64;
    for target in &o.targets {
        match smoke_target(target, &o, &current, &message) {
            Ok(n) => total_inputs += n,
            Err(e) => {
                eprintln!("{}: FINDING: {e}", target.name);
                findings.push(format!("{}: {e}", target.name));
            }
        }
    }
    if findings.is_empty() {
        println!("fuzz smoke: {total_inputs} inputs, no finding");
        Ok(())
    } else {
        Err(format!(
            "{} finding(s):\n  {}",
            findings.len(),
            findings.join("\n  ")
        ))
    }
}

fn smoke_target(
    target: &'static Target,
    o: &SmokeOptions,
    current: &Current,
    message: &Mutex<Option<String>>,
) -> Result<u64, String> {
    let start = Instant::now();
    let corpus = load_corpus(target)?;
    // The committed corpus must hold the fixture's current seeds: if the
    // libraries changed what the fixture produces, the seeds are stale.
    for (name, bytes) in (target.seeds)() {
        if corpus.get(&name) != Some(&bytes) {
            return Err(format!(
                "seed `{name}` in {} is missing or stale; run `cargo xtask fuzz --write-seeds` and commit it",
                corpus_dir(target).display()
            ));
        }
    }
    let dictionary = target.dictionary();
    let pool: Vec<Vec<u8>> = corpus.values().cloned().collect();
    let mut rng = Rng::new(o.seed ^ fnv(target.name.as_bytes()));
    let mut generated: Vec<Vec<u8>> = Vec::new();
    let deadline = start + Duration::from_secs(o.seconds);
    let mut n = 0u64;
    let run_one = |input: &[u8]| -> Result<(), String> {
        if let Ok(mut c) = current.input.lock() {
            c.0 = target.name.to_owned();
            c.1.clear();
            c.1.extend_from_slice(input);
        }
        let now_ms = (current.epoch.elapsed().as_millis() as u64).max(1);
        current.started_ms.store(now_ms, Ordering::SeqCst);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
        current.started_ms.store(0, Ordering::SeqCst);
        outcome.map_err(|_| {
            let what = message
                .lock()
                .ok()
                .and_then(|mut m| m.take())
                .unwrap_or_else(|| "panic".into());
            let saved = save_crash(target, input);
            format!(
                "{what}\n  input saved to {saved}\n  reproduce: cargo xtask fuzz --replay {} {saved}",
                target.name
            )
        })
    };

    // Every corpus entry as is, then mutations until the time is up.
    for input in &pool {
        run_one(input)?;
        n += 1;
    }
    while Instant::now() < deadline {
        for _ in 0..64 {
            let input = match rng.below(20) {
                0..=1 => mutate::random_input(&mut rng, &dictionary),
                r => {
                    let from_generated = r < 6 && !generated.is_empty();
                    let base = if from_generated {
                        generated.get(rng.below(generated.len()))
                    } else {
                        pool.get(rng.below(pool.len()))
                    };
                    let mut data = base.cloned().unwrap_or_default();
                    let other = pool.get(rng.below(pool.len())).cloned().unwrap_or_default();
                    mutate::mutate(&mut rng, &mut data, &other, &dictionary);
                    data
                }
            };
            run_one(&input)?;
            n += 1;
            // Keep some inputs to mutate further: without coverage feedback,
            // drift is how the run gets more than one edit from the seeds.
            if rng.one_in(8) {
                if generated.len() < 512 {
                    generated.push(input);
                } else {
                    let i = rng.below(generated.len());
                    if let Some(slot) = generated.get_mut(i) {
                        *slot = input;
                    }
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:<18} {:>9} inputs in {:>5.1} s ({:>7.0}/s), {} corpus entries, no finding",
        target.name,
        n,
        secs,
        n as f64 / secs.max(1e-9),
        pool.len()
    );
    Ok(n)
}

fn save_crash(target: &Target, input: &[u8]) -> String {
    let dir = crash_dir();
    let path = dir.join(format!("{}-{:016x}", target.name, fnv(input)));
    match fs::create_dir_all(&dir).and_then(|()| fs::write(&path, input)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not saved: {e}) {input:?}"),
    }
}

/// Aborts the process if one input runs longer than [`HANG_LIMIT`],
/// saving it first.
fn watchdog(current: Arc<Current>) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let started = current.started_ms.load(Ordering::SeqCst);
            let now = current.epoch.elapsed().as_millis() as u64;
            if started != 0 && now.saturating_sub(started) > HANG_LIMIT.as_millis() as u64 {
                let (name, input) = current.input.lock().map(|c| c.clone()).unwrap_or_default();
                let saved = etdi_fuzz::target(&name)
                    .map(|t| save_crash(t, &input))
                    .unwrap_or_default();
                eprintln!(
                    "etdi-fuzz: FINDING: {name}: one input ran over {} s (hang); saved to {saved}",
                    HANG_LIMIT.as_secs()
                );
                etdi_fuzz::targets::audit_log::cleanup();
                std::process::exit(2);
            }
        }
    });
}

/// FNV-1a 64: names crash files and derives per-target seeds.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed corpus holds exactly the fixture's current seeds (plus
    /// any regression inputs), so the smoke run and libFuzzer start from
    /// inputs that are valid today.
    #[test]
    fn committed_corpus_is_current() {
        for target in TARGETS {
            let corpus = load_corpus(target).unwrap();
            let seeds: BTreeMap<String, Vec<u8>> = (target.seeds)().into_iter().collect();
            let committed: BTreeMap<String, Vec<u8>> = corpus
                .into_iter()
                .filter(|(n, _)| !n.starts_with(REGRESSION_PREFIX))
                .collect();
            assert_eq!(
                committed.keys().collect::<Vec<_>>(),
                seeds.keys().collect::<Vec<_>>(),
                "{}: run `cargo xtask fuzz --write-seeds`",
                target.name
            );
            assert!(committed == seeds, "{}: stale seed contents", target.name);
        }
    }

    /// Every seed and regression input runs clean.
    #[test]
    fn corpus_runs_clean() {
        for target in TARGETS {
            for (name, bytes) in load_corpus(target).unwrap() {
                println!("{} {name}", target.name);
                (target.run)(&bytes);
            }
        }
        etdi_fuzz::targets::audit_log::cleanup();
    }
}
