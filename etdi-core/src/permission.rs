//! Permissions: parsed `segment:segment[:segment...]` strings and the one
//! matching rule every layer uses.
//!
//! # Grammar
//!
//! A permission is two to [`Permission::MAX_SEGMENTS`] segments joined by `:`.
//! A segment is one or more of `A-Z a-z 0-9 _ - .`; the last segment may
//! instead be exactly `*`. The whole string is at most
//! [`Permission::MAX_LEN`] bytes. Comparison is exact and case-sensitive
//! (OAuth scopes are case-sensitive).
//!
//! # Matching (normative, see docs/PROTOCOL.md §4)
//!
//! A *granted* permission `G` covers a *required* permission `R` when:
//!
//! * `G` has no wildcard and `G == R`; or
//! * `G` is `p1:…:pn:*` and `R` has at least `n + 1` segments whose first `n`
//!   are `p1…pn` (whether or not `R` itself ends in `*`).
//!
//! So a granted `file:*` covers `file:read`, `file:read:meta` and `file:*`;
//! a required `file:*` is covered only by a grant of `file:*` or a broader
//! wildcard, never by `file:read`. There is no implicit hierarchy without the
//! wildcard: `file:read` does not cover `file:read:meta`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parsed permission such as `file:read` or `database:user:*`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    text: String,
}

/// Why a permission string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PermissionError {
    /// Longer than [`Permission::MAX_LEN`] bytes.
    #[error("permission is {len} bytes, more than the limit of {limit}")]
    TooLong {
        /// Length of the refused string.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Fewer than two segments.
    #[error("permission `{input}` needs at least two `:`-separated segments, like `file:read`")]
    TooFewSegments {
        /// The refused string.
        input: String,
    },
    /// More than [`Permission::MAX_SEGMENTS`] segments.
    #[error("permission `{input}` has more than {limit} segments")]
    TooManySegments {
        /// The refused string.
        input: String,
        /// The limit in force.
        limit: usize,
    },
    /// A segment is empty (`file::read`, `file:`).
    #[error("permission `{input}` has an empty segment")]
    EmptySegment {
        /// The refused string.
        input: String,
    },
    /// `*` somewhere other than as the whole last segment.
    #[error("permission `{input}` uses `*` other than as the whole last segment")]
    MisplacedWildcard {
        /// The refused string.
        input: String,
    },
    /// A character outside `A-Z a-z 0-9 _ - .`.
    #[error("permission `{input}` contains the character {ch:?}; allowed are A-Z a-z 0-9 _ - .")]
    InvalidCharacter {
        /// The refused string.
        input: String,
        /// The first offending character.
        ch: char,
    },
}

impl Permission {
    /// Longest accepted permission string, in bytes.
    pub const MAX_LEN: usize = 256;
    /// Most segments a permission may have.
    pub const MAX_SEGMENTS: usize = 16;

    /// Parses a permission string. Equivalent to `s.parse()`.
    pub fn parse(s: &str) -> Result<Self, PermissionError> {
        if s.len() > Self::MAX_LEN {
            return Err(PermissionError::TooLong {
                len: s.len(),
                limit: Self::MAX_LEN,
            });
        }
        let input = || s.to_owned();
        let segments: Vec<&str> = s.split(':').collect();
        if segments.len() < 2 {
            return Err(PermissionError::TooFewSegments { input: input() });
        }
        if segments.len() > Self::MAX_SEGMENTS {
            return Err(PermissionError::TooManySegments {
                input: input(),
                limit: Self::MAX_SEGMENTS,
            });
        }
        let last = segments.len() - 1;
        for (i, seg) in segments.iter().enumerate() {
            if seg.is_empty() {
                return Err(PermissionError::EmptySegment { input: input() });
            }
            if *seg == "*" {
                if i != last {
                    return Err(PermissionError::MisplacedWildcard { input: input() });
                }
                continue;
            }
            if let Some(ch) = seg.chars().find(|c| !is_segment_char(*c)) {
                return Err(if ch == '*' {
                    PermissionError::MisplacedWildcard { input: input() }
                } else {
                    PermissionError::InvalidCharacter { input: input(), ch }
                });
            }
        }
        Ok(Permission { text: s.to_owned() })
    }

    /// The permission as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The `:`-separated segments, the wildcard included.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.text.split(':')
    }

    /// True when the last segment is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.text.ends_with(":*")
    }

    /// True when this permission, held by a principal, satisfies `required`.
    /// The rule is in the module documentation.
    pub fn covers(&self, required: &Permission) -> bool {
        match self.text.strip_suffix('*') {
            // `prefix` keeps its trailing `:`, so `file:` never matches `files:x`.
            // `required` is at least one segment longer because it is a valid
            // permission and cannot end in `:`.
            Some(prefix) if self.is_wildcard() => required.text.starts_with(prefix),
            _ => self.text == required.text,
        }
    }
}

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

impl FromStr for Permission {
    type Err = PermissionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::parse(s)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permission({})", self.text)
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Permission::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Permission {
        Permission::parse(s).unwrap()
    }

    #[test]
    fn parses_the_seed_examples() {
        for s in [
            "file:read",
            "database:user:update",
            "api:external_service:call",
            "audit:log",
            "user:profile:view",
            "file:*",
            "User.Read:x",
        ] {
            assert_eq!(p(s).as_str(), s);
        }
    }

    #[test]
    fn refuses_malformed_strings_with_a_typed_error() {
        use PermissionError::*;
        type Check = fn(&PermissionError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, TooFewSegments { .. })),
            ("file", |e| matches!(e, TooFewSegments { .. })),
            ("*", |e| matches!(e, TooFewSegments { .. })),
            ("file:", |e| matches!(e, EmptySegment { .. })),
            ("file::read", |e| matches!(e, EmptySegment { .. })),
            (":read", |e| matches!(e, EmptySegment { .. })),
            ("file:*:read", |e| matches!(e, MisplacedWildcard { .. })),
            ("file:re*", |e| matches!(e, MisplacedWildcard { .. })),
            ("*:read", |e| matches!(e, MisplacedWildcard { .. })),
            ("file:read ", |e| {
                matches!(e, InvalidCharacter { ch: ' ', .. })
            }),
            ("file:réad", |e| {
                matches!(e, InvalidCharacter { ch: 'é', .. })
            }),
            ("file:re\u{200b}ad", |e| {
                matches!(e, InvalidCharacter { .. })
            }),
        ];
        for (input, check) in cases {
            let err = Permission::parse(input).unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
        }
        let long = format!("a:{}", "b".repeat(Permission::MAX_LEN));
        assert!(matches!(
            Permission::parse(&long),
            Err(PermissionError::TooLong { .. })
        ));
        let many = vec!["a"; Permission::MAX_SEGMENTS + 1].join(":");
        assert!(matches!(
            Permission::parse(&many),
            Err(PermissionError::TooManySegments { .. })
        ));
    }

    #[test]
    fn matching_rule_on_both_sides() {
        // Granted wildcard covers everything below it.
        assert!(p("file:*").covers(&p("file:read")));
        assert!(p("file:*").covers(&p("file:read:meta")));
        assert!(p("file:*").covers(&p("file:*")));
        assert!(p("file:*").covers(&p("file:read:*")));
        // A required wildcard needs an equal or broader wildcard.
        assert!(!p("file:read").covers(&p("file:*")));
        assert!(!p("file:read:*").covers(&p("file:*")));
        // No implicit hierarchy, no prefix confusion.
        assert!(!p("file:read").covers(&p("file:read:meta")));
        assert!(!p("file:*").covers(&p("files:read")));
        assert!(!p("db:*").covers(&p("database:user:update")));
        // Case-sensitive.
        assert!(!p("file:read").covers(&p("File:read")));
        assert!(p("file:read").covers(&p("file:read")));
    }
}
