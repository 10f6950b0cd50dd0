//! Validated identifiers: tool ids, tool names, provider ids, semantic versions.
//!
//! Each is a newtype over `String` that can only be built through its parser,
//! so code that holds one never re-checks it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier or version was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Empty string.
    #[error("{what} is empty")]
    Empty {
        /// Which kind of identifier.
        what: &'static str,
    },
    /// Longer than the kind's limit.
    #[error("{what} is {len} bytes, more than the limit of {limit}")]
    TooLong {
        /// Which kind of identifier.
        what: &'static str,
        /// Length of the refused string.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A character the kind does not allow.
    #[error("{what} `{input}` contains the character {ch:?}; allowed are {allowed}")]
    InvalidCharacter {
        /// Which kind of identifier.
        what: &'static str,
        /// The refused string.
        input: String,
        /// The first offending character.
        ch: char,
        /// Human description of the allowed set.
        allowed: &'static str,
    },
    /// Not a semantic version.
    #[error(
        "version `{input}` is not a semantic version (MAJOR.MINOR.PATCH[-PRE][+BUILD]): {reason}"
    )]
    InvalidVersion {
        /// The refused string.
        input: String,
        /// What the semver parser said.
        reason: String,
    },
}

macro_rules! ident {
    (
        $(#[$doc:meta])*
        $name:ident, $what:literal, $max:expr, $allowed:literal, $pred:expr
    ) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Parses and validates.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check(s, $what, Self::MAX_LEN, $allowed, $pred).map(|()| Self(s.to_owned()))
            }

            /// The identifier as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn check(
    s: &str,
    what: &'static str,
    max: usize,
    allowed: &'static str,
    pred: fn(char) -> bool,
) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { what });
    }
    if s.len() > max {
        return Err(IdError::TooLong {
            what,
            len: s.len(),
            limit: max,
        });
    }
    match s.chars().find(|c| !pred(*c)) {
        Some(ch) => Err(IdError::InvalidCharacter {
            what,
            input: s.to_owned(),
            ch,
            allowed,
        }),
        None => Ok(()),
    }
}

fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '@')
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
}

ident!(
    /// A tool's stable identifier, unique within its provider and unchanged
    /// across renames and versions (e.g. `com.example.files/read`).
    ToolId, "tool id", 256, "A-Z a-z 0-9 . _ - : / @", id_char
);

ident!(
    /// The name the MCP client calls the tool by (`tools/call` `name`). The
    /// character set is the MCP specification's recommended one.
    ToolName, "tool name", 128, "A-Z a-z 0-9 . _ - /", name_char
);

ident!(
    /// A tool provider's identifier (e.g. `com.example`), the subject of its
    /// trusted keys.
    ProviderId, "provider id", 256, "A-Z a-z 0-9 . _ - : / @", id_char
);

ident!(
    /// An identifier of an MCP server as it appears in call-chain hops and
    /// approvals (e.g. its canonical URL or a configured name).
    ServerId, "server id", 512, "printable ASCII without spaces", |c: char| c.is_ascii_graphic()
);

/// A tool version: a parsed semantic version (`MAJOR.MINOR.PATCH[-PRE][+BUILD]`).
///
/// Equality is on the full version, build metadata included: versions are
/// immutable identities, so `1.0.0+a` and `1.0.0+b` are different versions.
/// [`ToolVersion::precedence`] orders by SemVer precedence (build ignored) for
/// upgrade and downgrade checks.
///
/// The written form is kept next to the parsed one: it goes into every
/// definition digest and attestation check, and formatting the version
/// each time was a measurable part of verification.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ToolVersion {
    version: semver::Version,
    /// `version` as SemVer writes it (a function of `version`, so the
    /// derived equality and hash are the version's own).
    text: Box<str>,
}

impl ToolVersion {
    /// Longest accepted version string, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Parses a semantic version; a leading `v` is refused.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() > Self::MAX_LEN {
            return Err(IdError::TooLong {
                what: "version",
                len: s.len(),
                limit: Self::MAX_LEN,
            });
        }
        semver::Version::parse(s)
            .map(|version| ToolVersion {
                text: version.to_string().into_boxed_str(),
                version,
            })
            .map_err(|e| IdError::InvalidVersion {
                input: s.to_owned(),
                reason: e.to_string(),
            })
    }

    /// Major, minor and patch numbers.
    pub fn triple(&self) -> (u64, u64, u64) {
        (self.version.major, self.version.minor, self.version.patch)
    }

    /// The version as written (`MAJOR.MINOR.PATCH[-PRE][+BUILD]`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// SemVer precedence (build metadata ignored).
    pub fn precedence(&self, other: &ToolVersion) -> std::cmp::Ordering {
        self.version.cmp_precedence(&other.version)
    }
}

impl FromStr for ToolVersion {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl fmt::Display for ToolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.text)
    }
}

impl fmt::Debug for ToolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ToolVersion({})", self.text)
    }
}

impl Serialize for ToolVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ToolVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn ids_validate() {
        assert!(ToolId::parse("com.example.files/read@v2").is_ok());
        assert_eq!(ToolId::parse(""), Err(IdError::Empty { what: "tool id" }));
        assert!(matches!(
            ToolName::parse("read file"),
            Err(IdError::InvalidCharacter { ch: ' ', .. })
        ));
        assert!(matches!(
            ToolName::parse("re\u{200b}ad"),
            Err(IdError::InvalidCharacter { ch: '\u{200b}', .. })
        ));
        assert!(matches!(
            ToolName::parse(&"a".repeat(129)),
            Err(IdError::TooLong { .. })
        ));
        assert!(ServerId::parse("https://mcp.example.com/mcp").is_ok());
    }

    #[test]
    fn versions_parse_strictly() {
        assert_eq!(ToolVersion::parse("1.2.3").unwrap().triple(), (1, 2, 3));
        for bad in ["v1.2.3", "1.2", "01.2.3", "1.2.3.4", "", "latest"] {
            assert!(
                matches!(ToolVersion::parse(bad), Err(IdError::InvalidVersion { .. })),
                "{bad}"
            );
        }
        let a = ToolVersion::parse("1.0.0+a").unwrap();
        let b = ToolVersion::parse("1.0.0+b").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.precedence(&b), Ordering::Equal);
        let pre = ToolVersion::parse("1.0.0-rc.1").unwrap();
        assert_eq!(pre.precedence(&a), Ordering::Less);
    }
}
