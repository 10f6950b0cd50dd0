//! The workspace's targets, read from `cargo metadata` so that a test or
//! bench added to any crate is picked up without editing xtask.

use std::process::Stdio;

use serde_json::Value;

use crate::util::cargo;

/// One target of one workspace package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub package: String,
    pub name: String,
    /// `lib`, `bin`, `test`, `bench`, `example`, ... (the first kind).
    pub kind: String,
    pub required_features: Vec<String>,
    /// The manifest's `test` flag (false: not run by a plain `cargo test`).
    pub test: bool,
}

/// Every target of every workspace member.
pub fn targets() -> Result<Vec<Target>, String> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo metadata: could not start: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed ({})", out.status));
    }
    let doc: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata printed something that is not JSON: {e}"))?;
    parse(&doc)
}

fn parse(doc: &Value) -> Result<Vec<Target>, String> {
    let bad = |what: &str| format!("cargo metadata: unexpected shape ({what})");
    let packages = doc
        .get("packages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no packages"))?;
    let mut out = Vec::new();
    for p in packages {
        let package = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("package without name"))?;
        let targets = p
            .get("targets")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("package without targets"))?;
        for t in targets {
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("target without name"))?;
            let kind = t
                .get("kind")
                .and_then(Value::as_array)
                .and_then(|k| k.first())
                .and_then(Value::as_str)
                .ok_or_else(|| bad("target without kind"))?;
            let required_features = t
                .get("required-features")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            out.push(Target {
                package: package.to_owned(),
                name: name.to_owned(),
                kind: kind.to_owned(),
                required_features,
                test: t.get("test").and_then(Value::as_bool).unwrap_or(true),
            });
        }
    }
    Ok(out)
}

/// The feature that marks a test as needing third-party peers.
pub const INTEROP_FEATURE: &str = "interop";

/// How `cargo test` is split: the integration tests that need peers (every
/// `[[test]]` with `required-features` naming `interop`), and everything
/// else a plain `cargo test` would run.
#[derive(Debug, Default)]
pub struct TestPlan {
    /// `(package, test target)` needing peers.
    pub interop: Vec<(String, String)>,
    /// Integration test targets that do not.
    pub regular_tests: Vec<String>,
    /// Binaries with `test = true` (their unit tests).
    pub bins: Vec<String>,
    /// Examples (built, and their tests run, as `cargo test` does).
    pub examples: Vec<String>,
}

impl TestPlan {
    pub fn from_targets(targets: &[Target]) -> Result<Self, String> {
        let mut plan = TestPlan::default();
        for t in targets {
            match t.kind.as_str() {
                "test" if t.required_features.iter().any(|f| f == INTEROP_FEATURE) => {
                    plan.interop.push((t.package.clone(), t.name.clone()));
                }
                "test" if t.test => plan.regular_tests.push(t.name.clone()),
                "bin" if t.test => plan.bins.push(t.name.clone()),
                "example" => plan.examples.push(t.name.clone()),
                _ => {}
            }
        }
        // `cargo test --workspace --test NAME` selects NAME in every package
        // that has it, so an interop test and an ordinary one must not share
        // a name, or the ordinary step would run the interop one too.
        for (package, name) in &plan.interop {
            if plan.regular_tests.contains(name) {
                return Err(format!(
                    "the interop test `{name}` of {package} has the same name as an ordinary \
                     test in another crate; rename one so the two steps stay apart"
                ));
            }
        }
        for list in [&mut plan.regular_tests, &mut plan.bins, &mut plan.examples] {
            list.sort();
            list.dedup();
        }
        plan.interop.sort();
        if plan.interop.is_empty() {
            return Err(format!(
                "no test target has required-features = [\"{INTEROP_FEATURE}\"]; \
                 the interop step would test nothing"
            ));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        serde_json::json!({"packages": [
            {"name": "a", "targets": [
                {"name": "a", "kind": ["lib"], "test": true},
                {"name": "plain", "kind": ["test"], "test": true},
                {"name": "peer", "kind": ["test"], "required-features": ["interop"], "test": true},
                {"name": "helper", "kind": ["bin"], "test": false},
                {"name": "speed", "kind": ["bench"], "test": false}
            ]},
            {"name": "b", "targets": [
                {"name": "b", "kind": ["bin"], "test": true},
                {"name": "cedar", "kind": ["test"], "required-features": ["cedar"], "test": true},
                {"name": "proxy", "kind": ["test"], "required-features": ["interop"], "test": true}
            ]}
        ]})
    }

    #[test]
    fn interop_tests_are_found_by_their_required_feature() {
        let plan = TestPlan::from_targets(&parse(&doc()).unwrap()).unwrap();
        assert_eq!(
            plan.interop,
            vec![("a".into(), "peer".into()), ("b".into(), "proxy".into())]
        );
        assert_eq!(plan.regular_tests, vec!["cedar", "plain"]);
        assert_eq!(plan.bins, vec!["b"]);
    }

    #[test]
    fn a_name_shared_by_an_interop_and_an_ordinary_test_is_refused() {
        let mut d = doc();
        d["packages"][1]["targets"][2]["name"] = "plain".into();
        let err = TestPlan::from_targets(&parse(&d).unwrap()).unwrap_err();
        assert!(err.contains("`plain`"), "{err}");
    }
}
