//! The acceptor: one SPNEGO/NTLMSSP exchange as a state machine fed one token at a time.
//!
//! Flow with SPNEGO ([MS-SPNG] 3.2.5, RFC 4178):
//! 1. NegTokenInit (NTLMSSP first, NEGOTIATE inside) → NegTokenResp accept-incomplete,
//!    supportedMech NTLMSSP, CHALLENGE. If NTLMSSP is offered but not first, the optimistic
//!    token is ignored and the reply carries no token; the NEGOTIATE comes next.
//! 2. NegTokenResp with AUTHENTICATE (+ mechListMIC) → accept-completed (+ our mechListMIC).
//!    When a mechListMIC is required but the client has not sent one yet, we send ours with
//!    accept-incomplete and wait for theirs in one more NegTokenResp, as Samba does.
//!
//! With raw NTLMSSP the same NTLM messages travel without any wrapping.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::ntlm::{self, Direction, flags};
use crate::spnego::{self, NegState, SpnegoError};
use crate::throttle::LogonThrottle;
use crate::userdb::{UserDb, fold_name};

/// Largest security token we look at. SMB2 SESSION_SETUP buffers are bounded by the same
/// 16-bit length and real NTLM tokens are a few hundred bytes.
pub const MAX_TOKEN_LEN: usize = 0xffff;

/// Difference between the FILETIME epoch (1601) and the Unix epoch, in seconds.
const FILETIME_UNIX_OFFSET_SECS: u64 = 11_644_473_600;

/// What the server accepts and how it names itself in CHALLENGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPolicy {
    /// Allow null sessions (empty user, empty responses).
    pub allow_anonymous: bool,
    /// Map unknown users and the user `guest` to [`Identity::Guest`].
    pub allow_guest: bool,
    pub netbios_domain: String,
    pub netbios_computer: String,
    pub dns_domain: String,
    pub dns_computer: String,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            allow_anonymous: false,
            allow_guest: false,
            netbios_domain: "WORKGROUP".into(),
            netbios_computer: "LANSHARE".into(),
            dns_domain: String::new(),
            dns_computer: "lanshare".into(),
        }
    }
}

/// Who logged on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A local account. `name` is spelled as in the user database; `domain` is our
    /// [`AuthPolicy::netbios_domain`], the authority that vouched for it (the domain the client
    /// typed is only a hint for NTLMv2 and often empty or arbitrary).
    User {
        name: String,
        domain: String,
    },
    Guest,
    Anonymous,
}

/// The result of one successful [`Acceptor::step`].
#[derive(Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this token back with STATUS_MORE_PROCESSING_REQUIRED and wait for the next one.
    Continue(Vec<u8>),
    /// Authenticated. `token` (maybe empty) goes in the final response with STATUS_SUCCESS.
    Done {
        token: Vec<u8>,
        identity: Identity,
        /// The NTLM ExportedSessionKey ([MS-NLMP] 3.2.5.1.2), the SMB2 session key.
        /// `None` for anonymous and guest logons, which cannot sign.
        session_key: Option<[u8; 16]>,
    },
}

impl fmt::Debug for Step {
    // Keeps the session key out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Continue(t) => f.debug_tuple("Continue").field(&t.len()).finish(),
            Step::Done {
                token,
                identity,
                session_key,
            } => f
                .debug_struct("Done")
                .field("token_len", &token.len())
                .field("identity", identity)
                .field("session_key", &session_key.map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// Why an exchange failed. After any error the acceptor is finished: further steps fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Wrong password, unknown user without guest mapping, or a similar refusal.
    #[error("logon failure: {reason}")]
    LogonFailure { reason: String },
    #[error("account {user:?} is disabled")]
    AccountDisabled { user: String },
    #[error("NTLMv1 and LM responses are refused")]
    NtlmV1Refused,
    #[error("anonymous logon is not allowed")]
    AnonymousRefused,
    #[error("guest logon is not allowed")]
    GuestRefused,
    #[error("malformed security token: {0}")]
    Malformed(String),
    /// The client offers no mechanism we implement (only NTLMSSP is).
    #[error("no supported security mechanism offered")]
    MechNotSupported,
    /// The NTLM AUTHENTICATE MIC or the SPNEGO mechListMIC did not verify.
    #[error("message integrity check failed")]
    MicMismatch,
    /// A token arrived after the exchange had finished or failed.
    #[error("authentication exchange already finished")]
    Finished,
    /// Too many failed logons from this address or for this account ([`LogonThrottle`]);
    /// refused without looking at the password.
    #[error("too many failed logons; retry in {} s", retry_after.as_secs())]
    LockedOut { retry_after: Duration },
}

impl AuthError {
    /// The NTSTATUS an SMB2 server answers with ([MS-ERREF] 2.3.1). Everything that is not a
    /// plain protocol error is a logon failure, so a client cannot tell an unknown user from a
    /// bad password.
    pub fn nt_status(&self) -> u32 {
        const STATUS_LOGON_FAILURE: u32 = 0xC000_006D;
        const STATUS_ACCOUNT_DISABLED: u32 = 0xC000_0072;
        const STATUS_INVALID_PARAMETER: u32 = 0xC000_000D;
        const STATUS_NOT_SUPPORTED: u32 = 0xC000_00BB;
        const STATUS_ACCESS_DENIED: u32 = 0xC000_0022;
        const STATUS_ACCOUNT_LOCKED_OUT: u32 = 0xC000_0234;
        match self {
            AuthError::LockedOut { .. } => STATUS_ACCOUNT_LOCKED_OUT,
            AuthError::AccountDisabled { .. } => STATUS_ACCOUNT_DISABLED,
            AuthError::Malformed(_) | AuthError::Finished => STATUS_INVALID_PARAMETER,
            AuthError::MechNotSupported => STATUS_NOT_SUPPORTED,
            AuthError::MicMismatch => STATUS_ACCESS_DENIED,
            AuthError::LogonFailure { .. }
            | AuthError::NtlmV1Refused
            | AuthError::AnonymousRefused
            | AuthError::GuestRefused => STATUS_LOGON_FAILURE,
        }
    }
}

impl From<SpnegoError> for AuthError {
    fn from(e: SpnegoError) -> Self {
        match e {
            SpnegoError::Malformed(m) => AuthError::Malformed(m),
            SpnegoError::OtherMech => AuthError::MechNotSupported,
        }
    }
}

/// SPNEGO bookkeeping kept across the exchange.
#[derive(Debug, Clone)]
struct SpnegoCtx {
    /// DER of the client's mechTypes, covered by mechListMIC.
    mech_types: Vec<u8>,
    /// NTLMSSP was not the client's first choice, so a mechListMIC is required to prove the
    /// choice was not forced by an attacker (RFC 4178 5).
    downgraded: bool,
}

/// The NTLM exchange so far, needed to check the AUTHENTICATE MIC.
#[derive(Debug, Clone)]
struct NtlmCtx {
    negotiate: Vec<u8>,
    challenge: Vec<u8>,
    flags: u32,
}

/// An authenticated result waiting for the client's mechListMIC.
#[derive(Debug, Clone)]
struct Pending {
    identity: Identity,
    key: [u8; 16],
    flags: u32,
}

#[derive(Debug, Clone)]
enum State {
    Initial {
        hint_sent: bool,
    },
    AwaitNegotiate {
        spnego: SpnegoCtx,
    },
    AwaitAuthenticate {
        spnego: Option<SpnegoCtx>,
        ntlm: NtlmCtx,
    },
    AwaitMechListMic {
        spnego: SpnegoCtx,
        pending: Pending,
    },
    Finished,
}

/// What a verified AUTHENTICATE yields.
struct Outcome {
    identity: Identity,
    key: Option<[u8; 16]>,
    flags: u32,
    /// The AUTHENTICATE carried a verified MIC: a modern client that will also send a
    /// mechListMIC ([MS-NLMP] 3.1.5.1.2, [MS-SPNG] 3.1.5.1).
    had_mic: bool,
}

/// One authentication exchange (one SMB2 SESSION_SETUP sequence).
pub struct Acceptor {
    db: Arc<dyn UserDb>,
    policy: Arc<AuthPolicy>,
    challenge: [u8; 8],
    filetime_now: u64,
    state: State,
    client: Option<ClientNames>,
    throttle: Option<(Arc<LogonThrottle>, IpAddr)>,
}

/// Names the client gave in AUTHENTICATE, kept for logs, throttling and session listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientNames {
    pub user: String,
    pub domain: String,
    pub workstation: String,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("policy", &self.policy)
            .field("state", &self.state_name())
            .finish_non_exhaustive()
    }
}

fn filetime_now() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (since.as_secs() + FILETIME_UNIX_OFFSET_SECS) * 10_000_000
        + u64::from(since.subsec_nanos() / 100)
}

fn malformed(m: impl Into<String>) -> AuthError {
    AuthError::Malformed(m.into())
}

impl Acceptor {
    /// A new exchange with a random server challenge and the current time.
    pub fn new(db: Arc<dyn UserDb>, policy: Arc<AuthPolicy>) -> Acceptor {
        Acceptor {
            db,
            policy,
            challenge: rand::random(),
            filetime_now: filetime_now(),
            state: State::Initial { hint_sent: false },
            client: None,
            throttle: None,
        }
    }

    /// For tests: fixed server challenge and timestamp.
    #[must_use]
    pub fn with_challenge(mut self, challenge: [u8; 8], filetime_now: u64) -> Acceptor {
        self.challenge = challenge;
        self.filetime_now = filetime_now;
        self
    }

    /// Consults and feeds `throttle` for logons from `client`: a locked-out address or account
    /// gets [`AuthError::LockedOut`]; wrong passwords and unknown users count as failures.
    #[must_use]
    pub fn with_throttle(mut self, throttle: Arc<LogonThrottle>, client: IpAddr) -> Acceptor {
        self.throttle = Some((throttle, client));
        self
    }

    /// The user, domain and workstation names from the client's AUTHENTICATE, once it has
    /// arrived and parsed, whether or not the logon then succeeded. Untrusted input: for logs,
    /// failed-logon throttling and display only.
    pub fn client_names(&self) -> Option<&ClientNames> {
        self.client.as_ref()
    }

    /// True once the exchange has succeeded or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            State::Initial { .. } => "initial",
            State::AwaitNegotiate { .. } => "await-negotiate",
            State::AwaitAuthenticate { .. } => "await-authenticate",
            State::AwaitMechListMic { .. } => "await-mechlistmic",
            State::Finished => "finished",
        }
    }

    /// Feeds the next token from the client. Total: any input gives `Ok` or `Err`, never a
    /// panic. After `Done` or an error, every further call is an error.
    pub fn step(&mut self, token: &[u8]) -> Result<Step, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Finished);
        if token.len() > MAX_TOKEN_LEN {
            return Err(malformed("token larger than 64 KiB"));
        }
        match state {
            State::Initial { hint_sent } => self.step_initial(token, hint_sent),
            State::AwaitNegotiate { spnego } => {
                let resp = parse_client_resp(token)?;
                let inner = resp
                    .response_token
                    .ok_or_else(|| malformed("NegTokenResp without the NTLM NEGOTIATE"))?;
                let challenge = self.ntlm_negotiate(inner)?;
                let out = spnego::encode_resp(
                    NegState::AcceptIncomplete,
                    None,
                    Some(&challenge.challenge),
                    None,
                );
                self.state = State::AwaitAuthenticate {
                    spnego: Some(spnego),
                    ntlm: challenge,
                };
                Ok(Step::Continue(out))
            }
            State::AwaitAuthenticate { spnego: None, ntlm } => {
                let outcome = self.ntlm_authenticate(&ntlm, token)?;
                Ok(Step::Done {
                    token: Vec::new(),
                    identity: outcome.identity,
                    session_key: outcome.key,
                })
            }
            State::AwaitAuthenticate {
                spnego: Some(spnego),
                ntlm,
            } => self.step_spnego_authenticate(spnego, &ntlm, token),
            State::AwaitMechListMic { spnego, pending } => {
                let resp = parse_client_resp(token)?;
                if resp.response_token.is_some_and(|t| !t.is_empty()) {
                    return Err(malformed("unexpected token while waiting for mechListMIC"));
                }
                let mic = resp
                    .mech_list_mic
                    .ok_or_else(|| malformed("mechListMIC missing"))?;
                verify_mech_list_mic(&pending.key, pending.flags, &spnego.mech_types, mic)?;
                Ok(Step::Done {
                    token: spnego::encode_resp(NegState::AcceptCompleted, None, None, None),
                    identity: pending.identity,
                    session_key: Some(pending.key),
                })
            }
            State::Finished => Err(AuthError::Finished),
        }
    }

    fn step_initial(&mut self, token: &[u8], hint_sent: bool) -> Result<Step, AuthError> {
        if token.is_empty() {
            // A client that got no hint in NEGOTIATE asks for one with an empty token
            // ([MS-SPNG] 3.2.5.2); answering twice would let it spin.
            if hint_sent {
                return Err(malformed("empty token"));
            }
            self.state = State::Initial { hint_sent: true };
            return Ok(Step::Continue(spnego::negotiate_hint()));
        }
        if token.starts_with(ntlm::SIGNATURE) {
            let ntlm = self.ntlm_negotiate(token)?;
            let out = ntlm.challenge.clone();
            self.state = State::AwaitAuthenticate { spnego: None, ntlm };
            return Ok(Step::Continue(out));
        }
        let init = spnego::parse_init(token)?;
        let index = init.ntlm_index.ok_or(AuthError::MechNotSupported)?;
        let spnego = SpnegoCtx {
            mech_types: init.mech_types_der.to_vec(),
            downgraded: index != 0,
        };
        match init.mech_token {
            Some(inner) if index == 0 => {
                let ntlm = self.ntlm_negotiate(inner)?;
                let out = spnego::encode_resp(
                    NegState::AcceptIncomplete,
                    Some(spnego::OID_NTLMSSP),
                    Some(&ntlm.challenge),
                    None,
                );
                self.state = State::AwaitAuthenticate {
                    spnego: Some(spnego),
                    ntlm,
                };
                Ok(Step::Continue(out))
            }
            // Either NTLMSSP is not the preferred mech (the optimistic token is for another
            // mech and is dropped) or no token came: name our choice and wait for NEGOTIATE.
            _ => {
                let out = spnego::encode_resp(
                    NegState::AcceptIncomplete,
                    Some(spnego::OID_NTLMSSP),
                    None,
                    None,
                );
                self.state = State::AwaitNegotiate { spnego };
                Ok(Step::Continue(out))
            }
        }
    }

    fn step_spnego_authenticate(
        &mut self,
        spnego: SpnegoCtx,
        ntlm: &NtlmCtx,
        token: &[u8],
    ) -> Result<Step, AuthError> {
        let resp = parse_client_resp(token)?;
        let inner = resp
            .response_token
            .ok_or_else(|| malformed("NegTokenResp without the NTLM AUTHENTICATE"))?;
        // Windows 2000 echoed the response token as the mechListMIC; such a "MIC" means none.
        let client_mic = resp.mech_list_mic.filter(|m| !m.is_empty() && *m != inner);
        let outcome = self.ntlm_authenticate(ntlm, inner)?;
        let Some(key) = outcome.key else {
            // Guest and anonymous have no key, so there is nothing to check or sign with.
            return Ok(Step::Done {
                token: spnego::encode_resp(NegState::AcceptCompleted, None, None, None),
                identity: outcome.identity,
                session_key: None,
            });
        };
        let ess = outcome.flags & flags::EXTENDED_SESSIONSECURITY != 0;
        if let Some(mic) = client_mic {
            if !ess {
                // The pre-NTLM2 signature scheme (CRC32 + RC4) is not implemented; better to
                // refuse than to accept an unchecked MIC.
                return Err(AuthError::MechNotSupported);
            }
            verify_mech_list_mic(&key, outcome.flags, &spnego.mech_types, mic)?;
        }
        let can_sign = ess && outcome.flags & (flags::SIGN | flags::KEY_EXCH) != 0;
        let needs_mic = can_sign && (client_mic.is_some() || outcome.had_mic || spnego.downgraded);
        if !needs_mic {
            return Ok(Step::Done {
                token: spnego::encode_resp(NegState::AcceptCompleted, None, None, None),
                identity: outcome.identity,
                session_key: Some(key),
            });
        }
        let ours = ntlm::mac(
            &key,
            outcome.flags,
            Direction::ServerToClient,
            0,
            &spnego.mech_types,
        );
        if client_mic.is_some() {
            Ok(Step::Done {
                token: spnego::encode_resp(NegState::AcceptCompleted, None, None, Some(&ours)),
                identity: outcome.identity,
                session_key: Some(key),
            })
        } else {
            let out = spnego::encode_resp(NegState::AcceptIncomplete, None, None, Some(&ours));
            self.state = State::AwaitMechListMic {
                spnego,
                pending: Pending {
                    identity: outcome.identity,
                    key,
                    flags: outcome.flags,
                },
            };
            Ok(Step::Continue(out))
        }
    }

    /// NEGOTIATE in, CHALLENGE built ([MS-NLMP] 3.2.5.1.1).
    fn ntlm_negotiate(&self, token: &[u8]) -> Result<NtlmCtx, AuthError> {
        let client_flags = ntlm::parse_negotiate(token).map_err(AuthError::Malformed)?;
        let flags = ntlm::challenge_flags(client_flags);
        let p = &*self.policy;
        let challenge = ntlm::build_challenge(&ntlm::ChallengeParams {
            flags,
            server_challenge: self.challenge,
            target_name: &p.netbios_computer,
            nb_domain: &p.netbios_domain,
            nb_computer: &p.netbios_computer,
            dns_domain: &p.dns_domain,
            dns_computer: &p.dns_computer,
            filetime: self.filetime_now,
        });
        Ok(NtlmCtx {
            negotiate: token.to_vec(),
            challenge,
            flags,
        })
    }

    /// AUTHENTICATE in, identity and key out ([MS-NLMP] 3.2.5.1.2, 3.3.2).
    fn ntlm_authenticate(&mut self, ctx: &NtlmCtx, token: &[u8]) -> Result<Outcome, AuthError> {
        let auth = ntlm::parse_authenticate(token, ctx.flags).map_err(AuthError::Malformed)?;
        self.client = Some(ClientNames {
            user: auth.user.clone(),
            domain: auth.domain.clone(),
            workstation: auth.workstation.clone(),
        });
        // The client's final flags, limited to what we offered.
        let flags = if auth.flags == 0 {
            ctx.flags
        } else {
            auth.flags & ctx.flags
        };
        let policy = &*self.policy;

        if auth.user.is_empty() && auth.nt_response.is_empty() && auth.lm_response.len() <= 1 {
            return if policy.allow_anonymous {
                Ok(Outcome {
                    identity: Identity::Anonymous,
                    key: None,
                    flags,
                    had_mic: false,
                })
            } else {
                Err(AuthError::AnonymousRefused)
            };
        }
        if auth.user.is_empty() {
            return Err(AuthError::LogonFailure {
                reason: "empty user name with a response".into(),
            });
        }
        if let Some((throttle, ip)) = &self.throttle {
            throttle
                .check(*ip, Some(&auth.user), Instant::now())
                .map_err(|t| AuthError::LockedOut {
                    retry_after: t.retry_after,
                })?;
        }
        let record = self.db.lookup(&auth.user);
        let mut account = record.as_ref().map(|r| r.name.clone());
        let mut result = self.verify_user(ctx, token, &auth, flags, record);
        // The lookup may have answered from a read of the accounts made a moment ago: before
        // a refusal stands, make sure the account was not just added, enabled or given this
        // password.
        let user_logon = matches!(
            result,
            Ok(Outcome {
                identity: Identity::User { .. },
                ..
            })
        );
        if !user_logon && self.db.reload_if_changed() {
            let record = self.db.lookup(&auth.user);
            account = record.as_ref().map(|r| r.name.clone());
            result = self.verify_user(ctx, token, &auth, flags, record);
        }
        if let Some((throttle, ip)) = &self.throttle {
            match &result {
                Ok(Outcome {
                    identity: Identity::User { name, .. },
                    ..
                }) => throttle.record_success(*ip, name),
                Err(AuthError::LogonFailure { .. } | AuthError::MicMismatch) => {
                    throttle.record_failure(*ip, account.as_deref(), Instant::now());
                }
                _ => {}
            }
        }
        result
    }

    /// Checks the NTLMv2 response of a named user ([MS-NLMP] 3.2.5.1.2, 3.3.2).
    fn verify_user(
        &self,
        ctx: &NtlmCtx,
        token: &[u8],
        auth: &ntlm::Authenticate<'_>,
        flags: u32,
        record: Option<crate::UserRecord>,
    ) -> Result<Outcome, AuthError> {
        let policy = &*self.policy;
        // No NT response (LM only) or a 24-byte one is LM / NTLMv1 / NTLM2-session.
        if auth.nt_response.is_empty() || auth.nt_response.len() == 24 {
            return Err(AuthError::NtlmV1Refused);
        }
        let v2 = ntlm::parse_ntlmv2_response(auth.nt_response).map_err(AuthError::Malformed)?;

        let guest = || {
            if policy.allow_guest {
                Ok(Outcome {
                    identity: Identity::Guest,
                    key: None,
                    flags,
                    had_mic: false,
                })
            } else if fold_name(&auth.user) == "GUEST" {
                Err(AuthError::GuestRefused)
            } else {
                Err(AuthError::LogonFailure {
                    reason: format!("unknown user {:?}", auth.user),
                })
            }
        };
        // An account named "guest" in the database is an ordinary account; only when there is
        // none does "guest" mean the guest logon.
        let Some(record) = record else {
            return guest();
        };

        // Windows checks local accounts against the domain the client typed, and clients type
        // anything there (nothing, the workgroup, the server name): try each.
        let mut domains: Vec<&str> = Vec::with_capacity(4);
        for d in [
            auth.domain.as_str(),
            "",
            &policy.netbios_domain,
            &policy.netbios_computer,
        ] {
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        let mut matched = None;
        for domain in domains {
            let owf = ntlm::ntowfv2(&record.nt_hash, &auth.user, domain);
            let proof = ntlm::nt_proof_str(&owf, &self.challenge, v2.blob);
            if ntlm::ct_eq(&proof, v2.nt_proof) {
                matched = Some(owf);
                break;
            }
        }
        let Some(owf) = matched else {
            return Err(AuthError::LogonFailure {
                reason: format!("wrong password for {:?}", record.name),
            });
        };
        // Checked only after the password so the flag does not leak to a guesser.
        if record.disabled {
            return Err(AuthError::AccountDisabled { user: record.name });
        }

        let key_exchange_key = ntlm::session_base_key(&owf, v2.nt_proof);
        let exported = if flags & flags::KEY_EXCH != 0 {
            let enc: [u8; 16] = auth
                .encrypted_session_key
                .try_into()
                .map_err(|_| malformed("KEY_EXCH without a 16-byte EncryptedRandomSessionKey"))?;
            let plain = ntlm::rc4(&key_exchange_key, &enc);
            <[u8; 16]>::try_from(plain.as_slice()).unwrap_or(key_exchange_key)
        } else {
            key_exchange_key
        };

        let had_mic = v2.av_flags & ntlm::AV_FLAG_MIC_PRESENT != 0;
        if had_mic {
            let mic = auth.mic.ok_or_else(|| {
                malformed("MsvAvFlags announces a MIC the message has no room for")
            })?;
            // The MIC covers the message with its own field zeroed: hashed in pieces around
            // the field rather than over a zeroed copy.
            let expected = match (
                token.get(..ntlm::AUTH_MIC_OFFSET),
                token.get(ntlm::AUTH_MIC_END..),
            ) {
                (Some(before), Some(after)) => ntlm::hmac_md5(
                    &exported,
                    &[
                        &ctx.negotiate,
                        &ctx.challenge,
                        before,
                        &[0u8; ntlm::AUTH_MIC_END - ntlm::AUTH_MIC_OFFSET],
                        after,
                    ],
                ),
                // Cannot happen (`mic` is only read from a message long enough to hold it);
                // a MIC over the message as it came then fails to verify.
                _ => ntlm::hmac_md5(&exported, &[&ctx.negotiate, &ctx.challenge, token]),
            };
            if !ntlm::ct_eq(&expected, &mic) {
                return Err(AuthError::MicMismatch);
            }
        }
        Ok(Outcome {
            identity: Identity::User {
                name: record.name,
                domain: policy.netbios_domain.clone(),
            },
            key: Some(exported),
            flags,
            had_mic,
        })
    }
}

/// Parses the initiator's NegTokenResp; its `reject` ends the exchange.
fn parse_client_resp(token: &[u8]) -> Result<spnego::NegTokenResp<'_>, AuthError> {
    let resp = spnego::parse_resp(token)?;
    if resp.neg_state == Some(spnego::NEG_STATE_REJECT) {
        return Err(AuthError::LogonFailure {
            reason: "client rejected the negotiation".into(),
        });
    }
    Ok(resp)
}

/// Checks the initiator's mechListMIC: its first signed message, sequence number 0, with the
/// client-to-server keys ([MS-SPNG] 3.3.5.1, [MS-NLMP] 3.4.4.2).
fn verify_mech_list_mic(
    key: &[u8; 16],
    flags_: u32,
    mech_types: &[u8],
    mic: &[u8],
) -> Result<(), AuthError> {
    let expected = ntlm::mac(key, flags_, Direction::ClientToServer, 0, mech_types);
    if ntlm::ct_eq(&expected, mic) {
        Ok(())
    } else {
        Err(AuthError::MicMismatch)
    }
}

/// Runs an acceptor (with a fixed user, guest and anonymous allowed) over `data` split into
/// tokens by 16-bit little-endian length prefixes. For fuzz targets: it must never panic.
pub fn fuzz_step(data: &[u8]) {
    let db = Arc::new(crate::MemoryUserDb::new().with_user("user", "password"));
    let policy = Arc::new(AuthPolicy {
        allow_anonymous: true,
        allow_guest: true,
        ..AuthPolicy::default()
    });
    let mut acceptor = Acceptor::new(db, policy).with_challenge([0x11; 8], 0);
    let mut rest = data;
    while let Some((len, after)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_le_bytes(*len)).min(after.len());
        let (token, next) = after.split_at(len);
        if acceptor.step(token).is_err() {
            break;
        }
        rest = next;
    }
}
