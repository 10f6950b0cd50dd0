//! Call chains: the hops a tool invocation went through, outermost first.
//!
//! The wire encoding (each hop signed by the server that makes the onward
//! call) is in docs/PROTOCOL.md §6; this module is the data and the
//! structural checks every layer shares.

use serde::{Deserialize, Serialize};

use crate::canonical::{CanonicalError, Digest};
use crate::id::{ServerId, ToolId};
use crate::tool::MAX_CALL_DEPTH;

/// One step of a chain: `principal` invoked `tool` on `server`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hop {
    /// The server that ran the tool.
    pub server: ServerId,
    /// The tool invoked.
    pub tool: ToolId,
    /// Subject of the principal on whose behalf it ran.
    pub principal: String,
}

/// A call chain, at most [`MAX_CALL_DEPTH`] hops long.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Hop>", into = "Vec<Hop>")]
pub struct CallChain {
    hops: Vec<Hop>,
}

/// Why a chain could not be built or extended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("call chain would have {len} hops, more than the protocol limit of {limit}")]
pub struct ChainTooLong {
    /// Hops the chain would have had.
    pub len: usize,
    /// The protocol limit.
    pub limit: usize,
}

impl CallChain {
    /// The empty chain (a direct call from a client).
    pub const fn new() -> Self {
        CallChain { hops: Vec::new() }
    }

    /// Appends a hop, refusing to exceed the protocol limit.
    pub fn push(&mut self, hop: Hop) -> Result<(), ChainTooLong> {
        let limit = MAX_CALL_DEPTH as usize;
        if self.hops.len() >= limit {
            return Err(ChainTooLong {
                len: self.hops.len() + 1,
                limit,
            });
        }
        self.hops.push(hop);
        Ok(())
    }

    /// A copy with `hop` appended.
    pub fn extended(&self, hop: Hop) -> Result<Self, ChainTooLong> {
        let mut c = self.clone();
        c.push(hop)?;
        Ok(c)
    }

    /// The hops, outermost first.
    pub fn hops(&self) -> &[Hop] {
        &self.hops
    }

    /// Number of hops.
    pub fn depth(&self) -> usize {
        self.hops.len()
    }

    /// The innermost hop: the tool that is making the next call.
    pub fn last(&self) -> Option<&Hop> {
        self.hops.last()
    }

    /// The first `(server, tool)` that appears twice, if any: a cycle.
    pub fn first_repeat(&self) -> Option<&Hop> {
        self.hops.iter().enumerate().find_map(|(i, h)| {
            self.hops
                .iter()
                .take(i)
                .any(|e| e.server == h.server && e.tool == h.tool)
                .then_some(h)
        })
    }

    /// True when calling `tool` on `server` next would close a cycle.
    pub fn would_cycle(&self, server: &ServerId, tool: &ToolId) -> bool {
        self.hops
            .iter()
            .any(|h| &h.server == server && &h.tool == tool)
    }

    /// SHA-256 of the canonical JSON of the hop list: the `chain` digest that
    /// request signatures bind.
    pub fn digest(&self) -> Result<Digest, CanonicalError> {
        Digest::of_canonical(&self.hops)
    }
}

impl TryFrom<Vec<Hop>> for CallChain {
    type Error = ChainTooLong;

    fn try_from(hops: Vec<Hop>) -> Result<Self, ChainTooLong> {
        let limit = MAX_CALL_DEPTH as usize;
        if hops.len() > limit {
            return Err(ChainTooLong {
                len: hops.len(),
                limit,
            });
        }
        Ok(CallChain { hops })
    }
}

impl From<CallChain> for Vec<Hop> {
    fn from(c: CallChain) -> Self {
        c.hops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(server: &str, tool: &str) -> Hop {
        Hop {
            server: ServerId::parse(server).unwrap(),
            tool: ToolId::parse(tool).unwrap(),
            principal: "alice".into(),
        }
    }

    #[test]
    fn cycles_depth_and_limit() {
        let mut c = CallChain::new();
        c.push(hop("s1", "a")).unwrap();
        c.push(hop("s2", "b")).unwrap();
        assert_eq!(c.depth(), 2);
        assert!(c.first_repeat().is_none());
        assert!(c.would_cycle(
            &ServerId::parse("s1").unwrap(),
            &ToolId::parse("a").unwrap()
        ));
        c.push(hop("s1", "a")).unwrap();
        assert_eq!(c.first_repeat(), Some(&hop("s1", "a")));

        let mut long = CallChain::new();
        for i in 0..MAX_CALL_DEPTH {
            long.push(hop("s", &format!("t{i}"))).unwrap();
        }
        assert!(long.push(hop("s", "x")).is_err());
        let too_many: Vec<Hop> = (0..=MAX_CALL_DEPTH)
            .map(|i| hop("s", &format!("t{i}")))
            .collect();
        assert!(
            serde_json::from_value::<CallChain>(serde_json::to_value(&too_many).unwrap()).is_err()
        );
    }

    #[test]
    fn digest_depends_on_order() {
        let a = CallChain::try_from(vec![hop("s", "a"), hop("s", "b")]).unwrap();
        let b = CallChain::try_from(vec![hop("s", "b"), hop("s", "a")]).unwrap();
        assert_ne!(a.digest().unwrap(), b.digest().unwrap());
    }
}
