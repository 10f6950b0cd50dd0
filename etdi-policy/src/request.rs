//! The question an engine answers: may this principal, reached through this
//! call chain, invoke this tool now?

use std::sync::LazyLock;

use etdi_core::{CallChain, Principal, ToolId};

/// One `tools/call` to decide on.
///
/// For a chained call, `hop_principals` holds the rights (scopes and roles)
/// of each hop's principal, in hop order, as carried signed on the wire
/// (docs/PROTOCOL.md §6); its length and subjects must match the chain's
/// hops or the decision is an internal-error deny.
#[derive(Debug, Clone, Copy)]
pub struct CallRequest<'a> {
    /// The authenticated principal of this request.
    pub principal: &'a Principal,
    /// The tool being called (on the engine's server).
    pub tool: &'a ToolId,
    /// The chain that led here; empty for a direct call from a client.
    pub chain: &'a CallChain,
    /// The rights of each hop's principal, one per hop.
    pub hop_principals: &'a [Principal],
    /// True when the request carried a request signature that verified
    /// (etdi-crypto checks it; the engine only needs the outcome).
    pub signed: bool,
}

/// The chain of every direct call. etdi-core's `CallChain::new` is not
/// `const`, hence the lazy static.
static EMPTY_CHAIN: LazyLock<CallChain> = LazyLock::new(CallChain::new);

impl<'a> CallRequest<'a> {
    /// A direct (unchained), unsigned call from a client.
    pub fn direct(principal: &'a Principal, tool: &'a ToolId) -> Self {
        CallRequest {
            principal,
            tool,
            chain: &EMPTY_CHAIN,
            hop_principals: &[],
            signed: false,
        }
    }

    /// A call reached through `chain`, with the rights of each hop's
    /// principal in `hop_principals`.
    pub fn chained(
        principal: &'a Principal,
        tool: &'a ToolId,
        chain: &'a CallChain,
        hop_principals: &'a [Principal],
    ) -> Self {
        CallRequest {
            principal,
            tool,
            chain,
            hop_principals,
            signed: false,
        }
    }

    /// Records whether the request signature verified (builder style).
    pub fn signed(mut self, signed: bool) -> Self {
        self.signed = signed;
        self
    }

    /// The depth this call has: hops in the chain plus one.
    pub fn depth(&self) -> u32 {
        u32::try_from(self.chain.depth())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }
}
