//! Streamable HTTP sessions bound to the principal that opened them, and a
//! per-principal session quota.
//!
//! rmcp's session manager knows session ids, not callers: anyone holding a
//! valid token and another user's `Mcp-Session-Id` could resume that
//! user's stream (`GET` with `Last-Event-ID`) and take their in-flight
//! results, or end their session (`DELETE`). The HTTP authentication layer
//! records, for every session it lets rmcp open, the principal that opened
//! it (issuer, subject and client id), and answers any later request on
//! that session from another principal exactly as rmcp answers an unknown
//! session (`404`), auditing the attempt. One principal may hold at most
//! [`crate::Limits::max_sessions_per_principal`] live sessions, so one
//! token cannot fill the server's session table for everybody else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use etdi_core::Principal;

/// Who opened a session: the identity fields a token or certificate fixes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Owner {
    issuer: Option<String>,
    subject: String,
    client_id: Option<String>,
}

impl Owner {
    pub(crate) fn of(p: &Principal) -> Owner {
        Owner {
            issuer: p.issuer.clone(),
            subject: p.subject.clone(),
            client_id: p.client_id.clone(),
        }
    }
}

/// What a session id means for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// The caller opened it.
    Owner,
    /// Someone else opened it.
    Foreign,
    /// No such session (ended, expired, or never opened here).
    Unknown,
}

/// The owners of the live sessions.
#[derive(Debug, Default)]
pub(crate) struct SessionOwners {
    by_session: Mutex<HashMap<Arc<str>, Owner>>,
}

impl SessionOwners {
    /// What `session` is to `owner`. A poisoned lock answers `Unknown`,
    /// which refuses the request.
    pub(crate) fn access(&self, session: &str, owner: &Owner) -> Access {
        let Ok(map) = self.by_session.lock() else {
            return Access::Unknown;
        };
        match map.get(session) {
            Some(o) if o == owner => Access::Owner,
            Some(_) => Access::Foreign,
            None => Access::Unknown,
        }
    }

    /// Drops the sessions rmcp no longer holds (ended or expired), then
    /// counts `owner`'s. `None` when the lock is poisoned (the caller
    /// refuses).
    pub(crate) fn live_count(
        &self,
        owner: &Owner,
        is_live: impl Fn(&str) -> bool,
    ) -> Option<usize> {
        let mut map = self.by_session.lock().ok()?;
        map.retain(|id, _| is_live(id));
        Some(map.values().filter(|o| *o == owner).count())
    }

    /// Records that `owner` opened `session`.
    pub(crate) fn bind(&self, session: &str, owner: Owner) {
        if let Ok(mut map) = self.by_session.lock() {
            map.insert(Arc::from(session), owner);
        }
    }

    /// Forgets an ended session.
    pub(crate) fn forget(&self, session: &str) {
        if let Ok(mut map) = self.by_session.lock() {
            map.remove(session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etdi_core::AuthMethod;

    fn p(iss: &str, sub: &str) -> Owner {
        let mut p = Principal::new(sub, AuthMethod::BearerJwt);
        p.issuer = Some(iss.into());
        Owner::of(&p)
    }

    #[test]
    fn a_session_belongs_to_its_issuer_and_subject() {
        let s = SessionOwners::default();
        s.bind("s1", p("https://a", "alice"));
        assert_eq!(s.access("s1", &p("https://a", "alice")), Access::Owner);
        assert_eq!(s.access("s1", &p("https://a", "bob")), Access::Foreign);
        assert_eq!(s.access("s1", &p("https://b", "alice")), Access::Foreign);
        assert_eq!(s.access("s2", &p("https://a", "alice")), Access::Unknown);
        s.forget("s1");
        assert_eq!(s.access("s1", &p("https://a", "alice")), Access::Unknown);
    }

    #[test]
    fn counting_drops_sessions_that_ended() {
        let s = SessionOwners::default();
        let alice = p("https://a", "alice");
        s.bind("s1", alice.clone());
        s.bind("s2", alice.clone());
        s.bind("s3", p("https://a", "bob"));
        assert_eq!(s.live_count(&alice, |_| true), Some(2));
        assert_eq!(s.live_count(&alice, |id| id != "s1"), Some(1));
        assert_eq!(s.access("s1", &alice), Access::Unknown);
    }
}
