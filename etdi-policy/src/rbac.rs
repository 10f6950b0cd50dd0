//! Role-based access control: roles grant permissions and inherit other
//! roles; inheritance is resolved once, at load time, into each role's
//! effective permission set. Cycles and unknown roles are load-time errors.

use std::collections::{BTreeMap, BTreeSet};

use etdi_core::Permission;

/// A role: the permissions it grants directly and the roles it inherits.
///
/// A role's effective permissions are its own plus those of every role it
/// inherits, transitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    /// Permissions granted directly (wildcards allowed: `file:*`).
    pub permissions: BTreeSet<Permission>,
    /// Names of roles whose permissions this role also grants.
    pub inherits: BTreeSet<String>,
}

impl Role {
    /// A role granting `permissions` and inheriting nothing.
    pub fn granting<I: IntoIterator<Item = Permission>>(permissions: I) -> Self {
        Role {
            permissions: permissions.into_iter().collect(),
            inherits: BTreeSet::new(),
        }
    }

    /// Adds inherited roles (builder style).
    pub fn inheriting<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inherits.extend(roles.into_iter().map(Into::into));
        self
    }
}

/// Why a set of roles or assignments was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RbacError {
    /// A role inherits a role that is not defined.
    #[error("role `{role}` inherits undefined role `{inherits}`")]
    UnknownInheritedRole {
        /// The inheriting role.
        role: String,
        /// The undefined role it names.
        inherits: String,
    },
    /// Inheritance loops back on itself; `cycle` starts and ends with the
    /// same role.
    #[error("role inheritance cycle: {}", cycle.join(" -> "))]
    InheritanceCycle {
        /// The roles on the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// A static assignment names a role that is not defined.
    #[error("subject `{subject}` is assigned undefined role `{role}`")]
    UnknownAssignedRole {
        /// The subject of the assignment.
        subject: String,
        /// The undefined role.
        role: String,
    },
}

/// Each role's effective permissions, inheritance resolved.
///
/// Roles come back in name order. Fails on an undefined inherited role or an
/// inheritance cycle. Iterative, so a long inheritance chain cannot overflow
/// the stack.
pub fn resolve_roles(
    roles: &BTreeMap<String, Role>,
) -> Result<BTreeMap<String, BTreeSet<Permission>>, RbacError> {
    let names: Vec<&String> = roles.keys().collect();
    let index: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut edges: Vec<Vec<usize>> = Vec::with_capacity(names.len());
    for (name, role) in roles {
        let mut out = Vec::with_capacity(role.inherits.len());
        for parent in &role.inherits {
            match index.get(parent.as_str()) {
                Some(i) => out.push(*i),
                None => {
                    return Err(RbacError::UnknownInheritedRole {
                        role: name.clone(),
                        inherits: parent.clone(),
                    });
                }
            }
        }
        edges.push(out);
    }

    // Depth-first search in post-order: a role is finished after every role
    // it inherits, so its closure can be built from theirs.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let n = names.len();
    let mut mark = vec![Mark::New; n];
    let mut closure: Vec<BTreeSet<Permission>> = vec![BTreeSet::new(); n];
    for root in 0..n {
        if mark.get(root) != Some(&Mark::New) {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        if let Some(m) = mark.get_mut(root) {
            *m = Mark::Open;
        }
        while let Some((node, next)) = stack.last().copied() {
            let child = edges.get(node).and_then(|e| e.get(next)).copied();
            match child {
                Some(c) => {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    match mark.get(c).copied() {
                        Some(Mark::New) => {
                            if let Some(m) = mark.get_mut(c) {
                                *m = Mark::Open;
                            }
                            stack.push((c, 0));
                        }
                        Some(Mark::Open) => {
                            // `c` is on the current path: report the loop.
                            let start = stack.iter().position(|(s, _)| *s == c).unwrap_or(0);
                            let mut cycle: Vec<String> = stack
                                .iter()
                                .skip(start)
                                .filter_map(|(s, _)| names.get(*s).map(|n| (*n).clone()))
                                .collect();
                            if let Some(first) = names.get(c) {
                                cycle.push((*first).clone());
                            }
                            return Err(RbacError::InheritanceCycle { cycle });
                        }
                        _ => {}
                    }
                }
                None => {
                    stack.pop();
                    let mut perms = roles
                        .get(names.get(node).map_or("", |s| s.as_str()))
                        .map(|r| r.permissions.clone())
                        .unwrap_or_default();
                    for c in edges.get(node).into_iter().flatten() {
                        if let Some(inherited) = closure.get(*c) {
                            perms.extend(inherited.iter().cloned());
                        }
                    }
                    if let Some(slot) = closure.get_mut(node) {
                        *slot = perms;
                    }
                    if let Some(m) = mark.get_mut(node) {
                        *m = Mark::Done;
                    }
                }
            }
        }
    }
    Ok(names
        .into_iter()
        .cloned()
        .zip(closure)
        .collect::<BTreeMap<_, _>>())
}

/// Checks that every statically assigned role is defined.
pub fn check_assignments(
    roles: &BTreeMap<String, Role>,
    assignments: &BTreeMap<String, BTreeSet<String>>,
) -> Result<(), RbacError> {
    for (subject, assigned) in assignments {
        if let Some(role) = assigned.iter().find(|r| !roles.contains_key(*r)) {
            return Err(RbacError::UnknownAssignedRole {
                subject: subject.clone(),
                role: role.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Permission {
        Permission::parse(s).unwrap()
    }

    fn roles(spec: &[(&str, &[&str], &[&str])]) -> BTreeMap<String, Role> {
        spec.iter()
            .map(|(n, perms, inh)| {
                (
                    (*n).to_owned(),
                    Role::granting(perms.iter().map(|s| p(s))).inheriting(inh.iter().copied()),
                )
            })
            .collect()
    }

    #[test]
    fn inheritance_is_transitive() {
        let r = roles(&[
            ("admin", &["admin:all"], &["editor"]),
            ("editor", &["file:write"], &["reader"]),
            ("reader", &["file:read"], &[]),
        ]);
        let eff = resolve_roles(&r).unwrap();
        assert_eq!(
            eff["admin"],
            [p("admin:all"), p("file:read"), p("file:write")]
                .into_iter()
                .collect()
        );
        assert_eq!(eff["reader"], [p("file:read")].into_iter().collect());
    }

    #[test]
    fn cycles_and_unknown_roles_are_errors() {
        let r = roles(&[("a", &[], &["b"]), ("b", &[], &["c"]), ("c", &[], &["a"])]);
        assert_eq!(
            resolve_roles(&r).unwrap_err(),
            RbacError::InheritanceCycle {
                cycle: vec!["a".into(), "b".into(), "c".into(), "a".into()]
            }
        );
        let r = roles(&[("a", &[], &["a"])]);
        assert!(matches!(
            resolve_roles(&r),
            Err(RbacError::InheritanceCycle { .. })
        ));
        let r = roles(&[("a", &[], &["ghost"])]);
        assert!(matches!(
            resolve_roles(&r),
            Err(RbacError::UnknownInheritedRole { .. })
        ));
        // A diamond is not a cycle.
        let r = roles(&[
            ("top", &[], &["l", "r"]),
            ("l", &[], &["base"]),
            ("r", &[], &["base"]),
            ("base", &["x:y"], &[]),
        ]);
        assert!(resolve_roles(&r).unwrap()["top"].contains(&p("x:y")));
    }

    #[test]
    fn long_chains_do_not_overflow() {
        let mut r = BTreeMap::new();
        for i in 0..20_000u32 {
            let mut role = Role::default();
            if i > 0 {
                role.inherits.insert(format!("r{}", i - 1));
            } else {
                role.permissions.insert(p("deep:perm"));
            }
            r.insert(format!("r{i}"), role);
        }
        // Keep this cheap: only check it terminates and inherits correctly
        // at the end of the chain.
        let eff = resolve_roles(&r).unwrap();
        assert!(eff["r19999"].contains(&p("deep:perm")));
    }
}
