//! `cargo xtask bench`: every criterion bench of every crate, in one
//! release build, then `BENCHMARKS.md` at the root and the raw figures in
//! `target/etdi-bench/bench.json`.
//!
//! The benches are found through `cargo metadata` (every `[[bench]]`), built
//! once with `--workspace --all-features` (so the optional RustCrypto
//! backend and the Cedar reference are measured too) and run one after the
//! other, never in parallel. Each row of the report is a criterion estimate
//! (`target/criterion/**/new/estimates.json` written by this run) set
//! against its reference measured in the same run: the raw signature
//! verification under a JWS or an ETDI token, a plain rmcp server under the
//! secure one, cedar-policy beside the built-in engine, plain JSON lines
//! under the hash-chained audit log. The benches' own interleaved reports
//! (their ratio tables) are kept verbatim beside them.
//!
//! Options: `--label TEXT` describes the conditions (a busy shared machine,
//! a quiet one); `--quick` passes shorter warm-up and measurement times to
//! the benches that take criterion's command line (groups that set their
//! own times keep them); `--no-write` leaves BENCHMARKS.md alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::metadata;
use crate::util::{Steps, cargo, root};

struct Options {
    label: String,
    quick: bool,
    write_markdown: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        label: "unlabelled run".into(),
        quick: false,
        write_markdown: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--label" => o.label = it.next().ok_or("--label needs a text")?.clone(),
            "--quick" => o.quick = true,
            "--no-write" => o.write_markdown = false,
            other => return Err(format!("bench: unknown option `{other}`")),
        }
    }
    Ok(o)
}

/// One bench target and what its run printed.
struct BenchRun {
    packages: Vec<String>,
    name: String,
    seconds: f64,
    /// The bench's own lines (criterion's progress and estimate lines
    /// removed).
    report: String,
    started: SystemTime,
    ended: SystemTime,
}

/// One criterion estimate.
#[derive(Clone)]
struct Row {
    id: String,
    bench: String,
    mean_ns: f64,
    median_ns: f64,
    /// Elements per iteration when the bench declared a throughput.
    elements: Option<u64>,
}

impl Row {
    /// Mean time per element (per iteration without a throughput).
    fn per_element(&self) -> f64 {
        self.mean_ns / self.elements.unwrap_or(1).max(1) as f64
    }
}

/// `cargo xtask bench`.
pub fn main(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let start = Instant::now();
    let started_at = SystemTime::now();
    let mut steps = Steps::default();
    let load_before = load_average();

    let mut benches: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in metadata::targets()? {
        if t.kind == "bench" {
            benches.entry(t.name).or_default().push(t.package);
        }
    }
    if benches.is_empty() {
        return Err("no [[bench]] target in the workspace".into());
    }

    // Only the bench targets (with `--workspace` alone, cargo would also
    // build every binary as a bench harness).
    let mut build = bench_cargo();
    build.arg("--no-run");
    for name in benches.keys() {
        build.args(["--bench", name]);
    }
    steps.run("release build of every bench (--all-features)", build)?;
    let build_seconds = start.elapsed().as_secs_f64();

    let out_dir = root().join("target/etdi-bench");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let mut runs = Vec::new();
    for (name, packages) in &benches {
        let title = format!("bench {} ({name})", packages.join(", "));
        let mut cmd = bench_cargo();
        cmd.args(["--bench", name, "--", "--noplot"]);
        if o.quick {
            cmd.args(["--warm-up-time", "0.3", "--measurement-time", "1"]);
        }
        let began = Instant::now();
        let started = SystemTime::now();
        let output = steps.time(&title, || run_capturing(cmd))?;
        let ended = SystemTime::now();
        let raw_path = out_dir.join(format!("{name}.txt"));
        fs::write(&raw_path, &output).map_err(|e| format!("{}: {e}", raw_path.display()))?;
        runs.push(BenchRun {
            packages: packages.clone(),
            name: name.clone(),
            seconds: began.elapsed().as_secs_f64(),
            report: own_report(&output),
            started,
            ended,
        });
    }

    let rows = criterion_rows(&root().join("target/criterion"), started_at, &runs)?;
    let total = start.elapsed().as_secs_f64();
    let machine = machine(load_before);
    let doc = json!({
        "label": o.label,
        "quick": o.quick,
        "machine": machine,
        "wall_seconds": {"release_build": build_seconds, "total": total},
        "benches": runs.iter().map(|r| json!({
            "packages": r.packages,
            "name": r.name,
            "seconds": r.seconds,
            "report": r.report,
        })).collect::<Vec<_>>(),
        "rows": rows.iter().map(|r| {
            let reference = reference_of(&r.id, &rows);
            json!({
                "id": r.id,
                "bench": r.bench,
                "mean_ns": r.mean_ns,
                "median_ns": r.median_ns,
                "elements": r.elements,
                "per_element_ns": r.per_element(),
                "reference": reference.map(|x| x.id.clone()),
                "ratio": reference.map(|x| r.per_element() / x.per_element()),
            })
        }).collect::<Vec<_>>(),
    });
    let json_path = out_dir.join("bench.json");
    let text = serde_json::to_string_pretty(&doc).map_err(|e| format!("bench.json: {e}"))?;
    fs::write(&json_path, text).map_err(|e| format!("{}: {e}", json_path.display()))?;
    println!("wrote {}", json_path.display());

    if o.write_markdown {
        let md = markdown(&o, &doc, &runs, &rows, build_seconds, total);
        let path = root().join("BENCHMARKS.md");
        fs::write(&path, md).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    steps.summary("bench", start.elapsed());
    Ok(())
}

fn bench_cargo() -> Command {
    let mut c = cargo();
    c.args(["bench", "--workspace", "--all-features", "--locked"]);
    c
}

/// Runs `cmd`, echoing and returning its standard output.
fn run_capturing(mut cmd: Command) -> Result<String, String> {
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("could not start: {e}"))?;
    let mut out = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("reading output: {e}"))?;
            println!("{line}");
            out.push_str(&line);
            out.push('\n');
        }
    }
    let status = child.wait().map_err(|e| format!("waiting: {e}"))?;
    if status.success() {
        Ok(out)
    } else {
        Err(format!("failed ({status})"))
    }
}

/// The lines a bench printed itself: criterion's per-benchmark lines
/// (id, time, throughput, change, outliers, warnings) are dropped.
fn own_report(output: &str) -> String {
    let noise = |l: &str| {
        let t = l.trim();
        t.starts_with("Benchmarking ")
            || t.starts_with("time:")
            || t.starts_with("thrpt:")
            || t.starts_with("change:")
            || t.starts_with("Found ")
            || t.starts_with("Warning:")
            || t.starts_with("Performance has")
            || t.starts_with("No change in performance")
            || t.starts_with("Change within noise")
            || t.contains(" time:   [")
            || t.contains(" thrpt:  [")
            || (t.contains('(')
                && (t.ends_with("high mild")
                    || t.ends_with("high severe")
                    || t.ends_with("low mild")
                    || t.ends_with("low severe")))
            || (!t.is_empty() && !t.contains(' ') && t.contains('/'))
            || t.starts_with("running ")
            || t.starts_with("test result:")
            || t.starts_with("Gnuplot not found")
    };
    let mut out = String::new();
    let mut blank = true;
    for l in output.lines().filter(|l| !noise(l)) {
        if l.trim().is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
        } else {
            out.push_str(l.trim_end());
            out.push('\n');
            blank = false;
        }
    }
    out.trim().to_owned()
}

/// The estimates criterion wrote during this run, attributed to the bench
/// that was running when each was written.
fn criterion_rows(dir: &Path, since: SystemTime, runs: &[BenchRun]) -> Result<Vec<Row>, String> {
    let mut files = Vec::new();
    collect_benchmark_files(dir, &mut files);
    let mut rows = Vec::new();
    for bench_file in files {
        let modified = fs::metadata(&bench_file)
            .and_then(|m| m.modified())
            .map_err(|e| format!("{}: {e}", bench_file.display()))?;
        if modified < since {
            continue; // an older run's figure
        }
        let Some(new_dir) = bench_file.parent() else {
            continue;
        };
        let meta = read_json(&bench_file)?;
        let estimates = read_json(&new_dir.join("estimates.json"))?;
        let id = meta
            .get("full_id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{}: no full_id", bench_file.display()))?;
        let point = |which: &str| {
            estimates
                .get(which)
                .and_then(|e| e.get("point_estimate"))
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("{}: no {which}", new_dir.display()))
        };
        let elements = meta
            .get("throughput")
            .and_then(|t| t.get("Elements").or_else(|| t.get("Bytes")))
            .and_then(Value::as_u64);
        let bench = runs
            .iter()
            .find(|r| modified >= r.started && modified <= r.ended)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        rows.push(Row {
            id: id.to_owned(),
            bench,
            mean_ns: point("mean")?,
            median_ns: point("median")?,
            elements,
        });
    }
    rows.sort_by(|a, b| (&a.bench, &a.id).cmp(&(&b.bench, &b.id)));
    Ok(rows)
}

fn collect_benchmark_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            collect_benchmark_files(&path, out);
        } else if path.file_name().is_some_and(|n| n == "benchmark.json")
            && path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "new")
        {
            out.push(path);
        }
    }
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The in-run reference of each measurement: `{x}` matches one `/`
/// segment and is substituted into the reference.
const REFERENCES: &[(&str, &str, &str)] = &[
    (
        "jws_verify/{b}/{alg}",
        "raw_verify/{b}/{alg}",
        "compact JWS verify vs the raw signature check",
    ),
    (
        "raw_verify/rust-crypto/{alg}",
        "raw_verify/aws-lc-rs/{alg}",
        "RustCrypto backend vs aws-lc-rs",
    ),
    (
        "protocol/{alg}/request_verify_and_record",
        "protocol/{alg}/raw_verify_request_input",
        "request signature (claims, digests, nonce) vs raw verify",
    ),
    (
        "protocol/{alg}/attestation_verify",
        "protocol/{alg}/raw_verify_attestation_input",
        "attestation (definition digest) vs raw verify",
    ),
    (
        "token/verify/{x}",
        "token/raw/rsa2048_verify",
        "access token vs one-shot RSA-2048 verify",
    ),
    (
        "token/raw/rsa2048_verify_parsed_key",
        "token/raw/rsa2048_verify",
        "pre-parsed key vs one-shot verify",
    ),
    (
        "decision/builtin/{n}",
        "decision/cedar/{n}",
        "built-in engine vs cedar-policy (below 1 is faster)",
    ),
    (
        "audit/buffered_hash_chain",
        "audit/reference_plain_jsonl",
        "hash-chained log vs plain JSON lines, per event",
    ),
    (
        "audit/group_commit_durable_512_producers",
        "audit/reference_plain_jsonl",
        "durable group commit vs plain JSON lines, per event",
    ),
    (
        "http_tools_call/{v..}",
        "http_tools_call/plain",
        "tools/call over HTTP vs a plain rmcp server",
    ),
    (
        "keepalive_tools_call/{v..}",
        "keepalive_tools_call/plain",
        "kept-alive client, SSE answers: tools/call vs a plain rmcp server",
    ),
    (
        "proxy_tools_call/proxy",
        "proxy_tools_call/direct",
        "through etdi proxy vs the upstream called directly (kept-alive)",
    ),
];

/// Matches `id` against `pattern`, returning the captures. `{x}` matches
/// one segment; `{x..}` as the last segment matches one or more.
fn matches(pattern: &str, id: &str) -> Option<BTreeMap<String, String>> {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = id.split('/').collect();
    let mut caps = BTreeMap::new();
    for (i, pp) in p.iter().enumerate() {
        let name = pp.strip_prefix('{').and_then(|x| x.strip_suffix('}'));
        match name {
            Some(rest) if rest.ends_with("..") && i + 1 == p.len() => {
                let tail = s.get(i..).filter(|t| !t.is_empty())?;
                caps.insert(rest.trim_end_matches("..").to_owned(), tail.join("/"));
                return Some(caps);
            }
            Some(name) => {
                caps.insert(name.to_owned(), (*s.get(i)?).to_owned());
            }
            None if s.get(i) == Some(pp) => {}
            None => return None,
        }
    }
    (p.len() == s.len()).then_some(caps)
}

fn reference_rule(id: &str) -> Option<(String, &'static str)> {
    REFERENCES.iter().find_map(|(pattern, reference, why)| {
        let caps = matches(pattern, id)?;
        let mut r = (*reference).to_owned();
        for (k, v) in caps {
            r = r.replace(&format!("{{{k}}}"), &v);
        }
        (r != id).then_some((r, *why))
    })
}

fn reference_of<'a>(id: &str, rows: &'a [Row]) -> Option<&'a Row> {
    let (reference, _) = reference_rule(id)?;
    rows.iter().find(|r| r.id == reference)
}

fn read_trimmed(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("unavailable ({e})"))
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    read_trimmed("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn machine(load_before: String) -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let logical = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let available = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let commit = command_line("git", &["rev-parse", "HEAD"]);
    // BENCHMARKS.md is this command's own output: a previous run leaving it
    // modified does not change what is measured.
    let dirty = !command_line(
        "git",
        &[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":(exclude)BENCHMARKS.md",
        ],
    )
    .is_empty();
    json!({
        "cpu_model": model,
        "logical_cpus": logical,
        "available_parallelism": available,
        "memory": memory,
        "kernel": read_trimmed("/proc/sys/kernel/osrelease"),
        "rustc": command_line("rustc", &["-V"]),
        "date_utc": utc_now(),
        "git_commit": commit,
        "git_dirty": dirty,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    })
}

/// The current UTC time as RFC 3339, without a date library.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// A ratio with three decimals, or three significant digits below 0.1
/// (`1.146`, `0.0213`, `0.000214`).
fn ratio(r: f64) -> String {
    if !r.is_finite() || r <= 0.0 {
        return format!("{r}");
    }
    let digits = (2 - r.log10().floor() as i32).max(3) as usize;
    format!("{r:.digits$}")
}

fn markdown(
    o: &Options,
    doc: &Value,
    runs: &[BenchRun],
    rows: &[Row],
    build_seconds: f64,
    total: f64,
) -> String {
    let m = &doc["machine"];
    let s = |v: &Value| v.as_str().unwrap_or("unknown").to_owned();
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `cargo xtask bench` (every criterion bench of every crate, one \
         release build with all features, benches run one after another). Each row \
         is a criterion mean set against a reference measured **in the same run**, \
         so the ratios mean more than the absolute times. Raw figures: \
         `target/etdi-bench/bench.json`; full bench output: `target/etdi-bench/*.txt`.\n"
    );
    let _ = writeln!(md, "## Conditions\n");
    let _ = writeln!(
        md,
        "**{}**{}\n",
        o.label,
        if o.quick { " (`--quick`)" } else { "" }
    );
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} |", s(&m["cpu_model"]));
    let _ = writeln!(
        md,
        "| logical CPUs | {} (available to the run: {}) |",
        m["logical_cpus"], m["available_parallelism"]
    );
    let _ = writeln!(md, "| memory | {} |", s(&m["memory"]));
    let _ = writeln!(md, "| kernel | {} |", s(&m["kernel"]));
    let _ = writeln!(md, "| rustc | {} |", s(&m["rustc"]));
    let _ = writeln!(md, "| date (UTC) | {} |", s(&m["date_utc"]));
    let _ = writeln!(
        md,
        "| commit | `{}`{} |",
        s(&m["git_commit"]),
        if m["git_dirty"].as_bool() == Some(true) {
            " (with uncommitted changes)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        md,
        "| load average before / after | {} / {} |",
        s(&m["load_average_before"]),
        s(&m["load_average_after"])
    );
    let _ = writeln!(
        md,
        "| wall time | {:.0} s in total, of which {:.0} s release build |\n",
        total, build_seconds
    );

    let _ = writeln!(md, "## Ratios against in-run references\n");
    let _ = writeln!(
        md,
        "Times are criterion means per iteration (per event where a bench declares a \
         throughput). Ratio = measurement / reference.\n"
    );
    for run in runs {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.bench == run.name).collect();
        if mine.is_empty() {
            continue;
        }
        let _ = writeln!(
            md,
            "### {} — `{}` ({:.0} s)\n",
            run.packages.join(", "),
            run.name,
            run.seconds
        );
        let _ = writeln!(
            md,
            "| benchmark | time | reference | reference time | ratio | what the ratio shows |"
        );
        let _ = writeln!(md, "|---|---:|---|---:|---:|---|");
        for r in mine {
            let rule = reference_rule(&r.id);
            let reference = reference_of(&r.id, rows);
            let per = if r.elements.is_some() { " /event" } else { "" };
            match (reference, rule) {
                (Some(x), Some((_, why))) => {
                    let _ = writeln!(
                        md,
                        "| `{}` | {}{per} | `{}` | {}{} | **{}** | {why} |",
                        r.id,
                        human(r.per_element()),
                        x.id,
                        human(x.per_element()),
                        if x.elements.is_some() { " /event" } else { "" },
                        ratio(r.per_element() / x.per_element())
                    );
                }
                _ => {
                    let _ = writeln!(
                        md,
                        "| `{}` | {}{per} | | | | |",
                        r.id,
                        human(r.per_element())
                    );
                }
            }
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "## The benches' own reports\n");
    let _ = writeln!(
        md,
        "Several benches measure their ratios themselves with interleaved batches \
         (raw and ETDI operations alternate, so machine noise hits both alike) and \
         print a table; these are copied here as printed.\n"
    );
    for run in runs.iter().filter(|r| !r.report.is_empty()) {
        let _ = writeln!(md, "### {} — `{}`\n", run.packages.join(", "), run.name);
        let _ = writeln!(md, "```text\n{}\n```\n", run.report);
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_by_pattern() {
        assert_eq!(
            reference_rule("jws_verify/aws-lc-rs/ES256").map(|r| r.0),
            Some("raw_verify/aws-lc-rs/ES256".to_owned())
        );
        assert_eq!(
            reference_rule("http_tools_call/secure+es256").map(|r| r.0),
            Some("http_tools_call/plain".to_owned())
        );
        // A reference is not its own reference.
        assert_eq!(reference_rule("http_tools_call/plain"), None);
        assert_eq!(reference_rule("raw_verify/aws-lc-rs/ES256"), None);
        assert_eq!(
            reference_rule("decision/builtin/100").map(|r| r.0),
            Some("decision/cedar/100".to_owned())
        );
        assert_eq!(
            reference_rule("http_tools_call/secure/call").map(|r| r.0),
            Some("http_tools_call/plain".to_owned())
        );
        assert_eq!(reference_rule("http_tools_call"), None);
    }

    #[test]
    fn ratios_keep_three_significant_digits() {
        assert_eq!(ratio(1.14567), "1.146");
        assert_eq!(ratio(0.021345), "0.0213");
        assert_eq!(ratio(0.000214), "0.000214");
        assert_eq!(ratio(12.34), "12.340");
    }

    #[test]
    fn criterion_lines_are_removed_from_the_report() {
        let out = "Benchmarking raw_verify/aws-lc-rs/ES256: Warming up\n\
                   raw_verify/aws-lc-rs/ES256\n\
                   \x20                       time:   [30.1 µs 30.2 µs 30.4 µs]\n\
                   Found 2 outliers among 20 measurements (10.00%)\n\
                   \x20 2 (10.00%) high mild\n\
                   \n\
                   etdi-auth token bench (median of 15 interleaved batches)\n\
                   \x20 ratio verify/raw = 1.042 (target <= 1.15: met)\n";
        assert_eq!(
            own_report(out),
            "etdi-auth token bench (median of 15 interleaved batches)\n  ratio verify/raw = 1.042 (target <= 1.15: met)"
        );
    }

    #[test]
    fn utc_dates_are_civil() {
        let d = utc_now();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20"), "{d}");
    }
}
