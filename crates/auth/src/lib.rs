//! lanshare-auth: the SPNEGO + NTLMv2 acceptor and the user database of lanshare.
//!
//! What it is: a pure state machine that takes the security tokens a client sends in SMB2
//! SESSION_SETUP (or any other GSS-style exchange) and answers with the server's tokens until
//! the client is authenticated ([`Acceptor`]), plus the account store it checks against
//! ([`UserDb`], [`UserFile`], [`MemoryUserDb`]).
//!
//! What it is not: no sockets, no async runtime, no clock beyond reading the time once per
//! exchange for the CHALLENGE timestamp. It does not sign or encrypt SMB messages (it only hands
//! out the session key) and it speaks no Kerberos, NTLMv1 or LM: those are refused.
//!
//! Layout:
//! - `acceptor` – [`Acceptor`], [`Step`], [`Identity`], [`AuthPolicy`], [`AuthError`].
//! - `spnego`   – NegTokenInit / NegTokenResp ([MS-SPNG], RFC 4178) and [`negotiate_hint`].
//! - `ntlm`     – NTLMSSP messages and NTLMv2 crypto ([MS-NLMP]).
//! - `throttle` – [`LogonThrottle`], failed-logon limits per address and account.
//! - `der`      – the small bounded DER reader/writer under `spnego`.
//! - `userdb`   – [`UserRecord`], [`UserDb`], [`MemoryUserDb`], [`nt_hash`].
//! - `userfile` – [`UserFile`], the `name:NT-HASH[:flags]` text file.
//! - `watched`  – [`WatchedUserFile`], a [`UserDb`] that reloads the user file when it changes.

#![forbid(unsafe_code)]
// Tests may unwrap (common rules); the library itself may not.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod acceptor;
mod der;
mod ntlm;
mod spnego;
mod throttle;
mod userdb;
mod userfile;
mod watched;

pub use acceptor::{
    Acceptor, AuthError, AuthPolicy, ClientNames, Identity, MAX_TOKEN_LEN, Step, fuzz_step,
};
pub use spnego::{negotiate_hint, negotiate_hint_bytes};
pub use throttle::{LogonThrottle, ThrottleConfig, Throttled};
pub use userdb::{MemoryUserDb, UserDb, UserRecord, nt_hash};
pub use userfile::{MAX_NAME_CHARS, UserFile, UserFileError, validate_user_name};
pub use watched::WatchedUserFile;
