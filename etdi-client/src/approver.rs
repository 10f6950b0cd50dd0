//! Who decides a new approval: an interactive prompt, an operator's rule
//! set, or nobody (deny by default).
//!
//! An [`Approver`] is asked only for tools the rug-pull engine says need an
//! approval ([`Verdict::NeedsApproval`]); blocked tools never reach it. It
//! is called with no store lock held, so a slow person cannot stall other
//! processes.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::sync::Mutex;

use etdi_core::{Permission, ProviderId, ServerId, Timestamp, ToolDefinition, VerificationStatus};

use crate::rugpull::{Assessment, Change, Verdict};

/// What an approver is asked about.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalRequest<'a> {
    /// The server advertising the tool.
    pub server: &'a ServerId,
    /// The definition as advertised.
    pub definition: &'a ToolDefinition,
    /// How its attestation verified.
    pub verification: &'a VerificationStatus,
    /// The rug-pull engine's findings (previous pin and every change).
    pub assessment: &'a Assessment,
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalDecision {
    /// Approve; `by` is recorded in the pin.
    Approve {
        /// Who approved (a user name or `rule:<name>`).
        by: String,
        /// Optional expiry of the approval.
        expires_at: Option<Timestamp>,
    },
    /// Refuse; the tool stays unusable.
    Deny {
        /// Why (for logs and reports).
        reason: String,
    },
}

/// Decides approvals.
pub trait Approver: Send + Sync {
    /// Decides one request. Errors must come back as `Deny`.
    fn decide(&self, request: &ApprovalRequest<'_>) -> ApprovalDecision;
}

/// Denies everything: the default, so nothing new is ever used silently.
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyAll;

impl Approver for DenyAll {
    fn decide(&self, _: &ApprovalRequest<'_>) -> ApprovalDecision {
        ApprovalDecision::Deny {
            reason: "no approver configured (deny by default)".into(),
        }
    }
}

/// One auto-approval rule: tools of `provider` whose permissions stay
/// within `ceiling`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoApproveRule {
    /// A name recorded as `rule:<name>` in the pins it creates.
    pub name: String,
    /// The provider the rule is for.
    pub provider: ProviderId,
    /// Every permission the tool needs must be covered by one of these.
    pub ceiling: BTreeSet<Permission>,
    /// Require a verified attestation (default true).
    pub require_verified: bool,
    /// Optional lifetime of the approvals it grants, in seconds.
    pub lifetime_secs: Option<i64>,
}

impl AutoApproveRule {
    /// A rule for `provider` with permission ceiling `ceiling`, requiring a
    /// verified attestation.
    pub fn new(
        name: impl Into<String>,
        provider: ProviderId,
        ceiling: impl IntoIterator<Item = Permission>,
    ) -> Self {
        AutoApproveRule {
            name: name.into(),
            provider,
            ceiling: ceiling.into_iter().collect(),
            require_verified: true,
            lifetime_secs: None,
        }
    }

    /// Why this rule does not apply to `request`, or `None` if it does.
    fn refuses(&self, request: &ApprovalRequest<'_>) -> Option<String> {
        let def = request.definition;
        if def.provider.id != self.provider {
            return Some(format!("provider `{}` has no rule", def.provider.id));
        }
        if self.require_verified && !request.verification.is_verified() {
            return Some("the attestation did not verify".into());
        }
        if let Some(p) = def
            .permissions
            .iter()
            .find(|p| !self.ceiling.iter().any(|g| g.covers(p)))
        {
            return Some(format!("permission `{p}` is above the rule's ceiling"));
        }
        // Changes that are signs of an attack are left to a person even when
        // the result would fit the ceiling.
        request.assessment.changes.iter().find_map(|c| match c {
            Change::ProviderSwap { .. }
            | Change::SigningKeyChanged { .. }
            | Change::VersionDowngrade { .. }
            | Change::ToolIdChanged { .. }
            | Change::SuspiciousUnicode { .. } => Some(format!("{c}: needs a person")),
            _ => None,
        })
    }
}

/// Approves what one of its rules covers, denies the rest.
#[derive(Debug, Clone, Default)]
pub struct RuleApprover {
    rules: Vec<AutoApproveRule>,
    now: Option<Timestamp>,
}

impl RuleApprover {
    /// No rules (denies everything).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule.
    #[must_use]
    pub fn rule(mut self, rule: AutoApproveRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Fixes the clock used for rule lifetimes (tests); the system clock otherwise.
    #[must_use]
    pub fn at(mut self, now: Timestamp) -> Self {
        self.now = Some(now);
        self
    }
}

impl Approver for RuleApprover {
    fn decide(&self, request: &ApprovalRequest<'_>) -> ApprovalDecision {
        if request.assessment.verdict == Verdict::Blocked {
            return ApprovalDecision::Deny {
                reason: "blocked tools cannot be approved".into(),
            };
        }
        let mut why = Vec::new();
        for rule in &self.rules {
            match rule.refuses(request) {
                None => {
                    let now = self
                        .now
                        .unwrap_or_else(|| Timestamp::from(std::time::SystemTime::now()));
                    let expires_at = rule.lifetime_secs.and_then(|s| {
                        Timestamp::from_unix(now.unix_seconds().saturating_add(s), 0)
                    });
                    return ApprovalDecision::Approve {
                        by: format!("rule:{}", rule.name),
                        expires_at,
                    };
                }
                Some(r) => why.push(format!("rule `{}`: {r}", rule.name)),
            }
        }
        ApprovalDecision::Deny {
            reason: if why.is_empty() {
                "no auto-approval rule".into()
            } else {
                why.join("; ")
            },
        }
    }
}

/// Asks a person: writes a summary of the tool and every change to
/// `output`, reads one line from `input`; `y` or `yes` approves, anything
/// else (end of input included) denies.
///
/// Generic over the streams so it runs on a terminal
/// (`PromptApprover::new(stdin().lock(), stderr(), user)`) and in tests on
/// byte buffers.
#[derive(Debug)]
pub struct PromptApprover<R, W> {
    io: Mutex<(R, W)>,
    user: String,
}

impl<R: BufRead + Send, W: Write + Send> PromptApprover<R, W> {
    /// A prompt recording approvals as made by `user`.
    pub fn new(input: R, output: W, user: impl Into<String>) -> Self {
        PromptApprover {
            io: Mutex::new((input, output)),
            user: user.into(),
        }
    }

    /// The streams back (tests read what was written).
    pub fn into_inner(self) -> (R, W) {
        match self.io.into_inner() {
            Ok(io) => io,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn ask(&self, request: &ApprovalRequest<'_>) -> std::io::Result<bool> {
        let mut guard = self
            .io
            .lock()
            .map_err(|_| std::io::Error::other("prompt lock poisoned"))?;
        let (input, output) = &mut *guard;
        write!(output, "{}", render(request))?;
        write!(output, "Approve? [y/N] ")?;
        output.flush()?;
        let mut line = String::new();
        input.read_line(&mut line)?;
        let answer = line.trim().to_ascii_lowercase();
        Ok(answer == "y" || answer == "yes")
    }
}

impl<R: BufRead + Send, W: Write + Send> Approver for PromptApprover<R, W> {
    fn decide(&self, request: &ApprovalRequest<'_>) -> ApprovalDecision {
        match self.ask(request) {
            Ok(true) => ApprovalDecision::Approve {
                by: self.user.clone(),
                expires_at: None,
            },
            Ok(false) => ApprovalDecision::Deny {
                reason: format!("{} declined", self.user),
            },
            Err(e) => ApprovalDecision::Deny {
                reason: format!("prompt failed: {e}"),
            },
        }
    }
}

/// Escapes everything but printable ASCII and newlines, so the prompt shows
/// hidden characters instead of rendering them.
fn visible(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\n' || (' '..='~').contains(&c) {
                c.to_string()
            } else {
                format!("\\u{{{:04X}}}", c as u32)
            }
        })
        .collect()
}

/// The text a person is shown for a request.
pub fn render(request: &ApprovalRequest<'_>) -> String {
    let d = request.definition;
    let mut s = String::new();
    let heading = if request.assessment.is_first_seen() {
        "New tool"
    } else {
        "Changed tool"
    };
    s.push_str(&format!(
        "{heading} `{}` (id {}, version {}) from provider {} on server {}\n",
        d.name, d.id, d.version, d.provider.id, request.server
    ));
    let verification = match request.verification {
        VerificationStatus::Verified { issuer, key_id } => {
            format!(
                "verified: signed by {} (key {})",
                visible(issuer),
                visible(key_id)
            )
        }
        VerificationStatus::Unsigned => "NOT SIGNED".into(),
        VerificationStatus::Failed { failure } => format!("VERIFICATION FAILED: {failure}"),
    };
    s.push_str(&format!("  attestation: {verification}\n"));
    let perms: Vec<&str> = d.permissions.iter().map(Permission::as_str).collect();
    s.push_str(&format!(
        "  permissions: {}\n",
        if perms.is_empty() {
            "(none)".to_owned()
        } else {
            perms.join(", ")
        }
    ));
    s.push_str(&format!("  description: {}\n", visible(&d.description)));
    for c in &request.assessment.changes {
        s.push_str(&format!("  ! {}\n", visible(&c.to_string())));
    }
    s
}
