//! Compiled permission matching: an interner for permission strings, the
//! grant strings that can cover a required permission, and a small bit set.
//!
//! The matching rule is etdi-core's [`Permission::covers`]. It is compiled
//! here into exact lookups: a grant `G` covers a required `R` exactly when
//! `G` is one of `R`'s *candidates*, which are `R` itself and every
//! `p1:…:pk:*` for a proper prefix `p1…pk` of `R`'s segments. So a decision
//! never scans grants; it looks up a handful of strings.

use std::collections::HashMap;

use etdi_core::Permission;

/// A dense index of every permission string the policy mentions.
#[derive(Debug, Default, Clone)]
pub(crate) struct PermTable {
    ids: HashMap<Box<str>, u32>,
}

impl PermTable {
    /// The id of `text`, adding it if new.
    pub(crate) fn intern(&mut self, text: &str) -> u32 {
        if let Some(id) = self.ids.get(text) {
            return *id;
        }
        // The table never holds more entries than the policy has strings, far
        // below `u32::MAX`; saturate rather than wrap if it ever did.
        let id = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        self.ids.insert(text.into(), id);
        id
    }

    /// The id of `text`, if the policy mentions it.
    pub(crate) fn get(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    /// Number of interned strings.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Every grant string that covers `required`, `required` itself first.
///
/// Proven equal to [`Permission::covers`] by the property tests.
pub(crate) fn candidates(required: &Permission) -> Vec<String> {
    let text = required.as_str();
    let mut out = vec![text.to_owned()];
    // Byte offsets of each `:`; the prefix up to and including separator k
    // followed by `*` is the wildcard over the first k+1 segments.
    for (i, _) in text.match_indices(':') {
        let Some(prefix) = text.get(..=i) else {
            continue;
        };
        let wildcard = format!("{prefix}*");
        if wildcard != text {
            out.push(wildcard);
        }
    }
    out
}

/// A fixed-size set of small integers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    /// An empty set able to hold `0..n`.
    pub(crate) fn with_capacity(n: usize) -> Self {
        BitSet {
            words: vec![0; n.div_ceil(64)],
        }
    }

    /// Adds `i`; ignored when out of range (the caller sized the set).
    pub(crate) fn insert(&mut self, i: u32) {
        let i = i as usize;
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    /// True when `i` is in the set.
    #[inline]
    pub(crate) fn contains(&self, i: u32) -> bool {
        let i = i as usize;
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Permission {
        Permission::parse(s).unwrap()
    }

    #[test]
    fn candidates_of_plain_and_wildcard_permissions() {
        assert_eq!(candidates(&p("file:read")), ["file:read", "file:*"]);
        assert_eq!(
            candidates(&p("db:user:update")),
            ["db:user:update", "db:*", "db:user:*"]
        );
        assert_eq!(candidates(&p("file:*")), ["file:*"]);
        assert_eq!(candidates(&p("a:b:*")), ["a:b:*", "a:*"]);
    }

    #[test]
    fn bitset_basics() {
        let mut s = BitSet::with_capacity(130);
        s.insert(0);
        s.insert(129);
        s.insert(500);
        assert!(s.contains(0) && s.contains(129));
        assert!(!s.contains(1) && !s.contains(500));
    }
}
