//! The admin API's bearer token: 256 bits from the OS CSPRNG, stored in a
//! 0600 file; compared in constant time through its SHA-256 digest, so
//! neither content nor length leaks through timing.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::decide::{Caller, Credentials, Denied};
use crate::journal::{AccessKind, DenyReason, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error("admin token file {path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error("admin token file {path} is empty")]
    Empty { path: PathBuf },
    #[error("admin token file {path} is readable by others (mode {mode:o}); chmod 600 it")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl AdminToken {
    /// Reads the token file, creating it (0600, new random token) if absent.
    pub fn load_or_create(path: &Path) -> Result<AdminToken, AdminTokenError> {
        let io_err = |cause| AdminTokenError::Io {
            path: path.to_path_buf(),
            cause,
        };
        if !path.exists() {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(io_err)?;
            }
            let mut bytes = [0u8; 32];
            OsRng
                .try_fill_bytes(&mut bytes)
                .map_err(|e| AdminTokenError::Random(e.to_string()))?;
            let token = URL_SAFE_NO_PAD.encode(bytes);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(mut file) => {
                    file.write_all(format!("{token}\n").as_bytes())
                        .map_err(io_err)?;
                    file.sync_all().map_err(io_err)?;
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        Self::load(path)
    }

    /// Reads an existing token file.
    pub fn load(path: &Path) -> Result<AdminToken, AdminTokenError> {
        let token = read_token(path)?;
        Ok(AdminToken {
            digest: digest(token.as_bytes()),
        })
    }

    /// Checks an `Authorization` header value: `Bearer <token>`.
    pub fn permits(&self, authorization: Option<&[u8]>) -> bool {
        let presented = bearer(authorization).unwrap_or_default();
        bool::from(digest(presented).ct_eq(&self.digest)) & !presented.is_empty()
    }
}

impl super::Authz {
    /// Whether a request may use the admin API: its bearer token compared
    /// in constant time. Failures are limited per address (`for_admin_failures`);
    /// an address past its limit is refused with `RateLimited` until its
    /// bucket refills, even with the right token, so that a guesser learns
    /// nothing from the limited answers. Every refusal is journaled (bounded
    /// like every refusal) and, when journaled, logged.
    pub fn admit_admin(
        &self,
        token: &AdminToken,
        authorization: Option<&[u8]>,
        from: IpAddr,
    ) -> Result<(), Denied> {
        let caller = Caller {
            credentials: &Credentials::default(),
            from,
        };
        let refuse = |reason: DenyReason| {
            if self.record(caller, AccessKind::Admin, None, Outcome::Denied(reason)) {
                tracing::warn!(peer = %from, ?reason, "admin API: authentication refused");
            }
        };
        if let Err(wait) = self.admin_failures.check(from) {
            refuse(DenyReason::RateLimited);
            return Err(Denied::RateLimited(wait));
        }
        if token.permits(authorization) {
            return Ok(());
        }
        // this failure takes from the bucket; the next one may be refused
        let _ = self.admin_failures.attempt(from);
        let reason = if bearer(authorization).is_some() {
            DenyReason::UnknownToken
        } else {
            DenyReason::NoCredential
        };
        refuse(reason);
        Err(Denied::Neutral(reason))
    }
}

/// The credential of an `Authorization: Bearer` header value (the scheme is
/// case-insensitive, RFC 9110 §11.1).
pub fn bearer(authorization: Option<&[u8]>) -> Option<&[u8]> {
    authorization
        .filter(|h| h.len() > 7 && h[..7].eq_ignore_ascii_case(b"bearer "))
        .map(|h| h[7..].trim_ascii())
        .filter(|t| !t.is_empty())
}

/// The token itself, for the CLI talking to its own daemon.
pub fn read_token(path: &Path) -> Result<String, AdminTokenError> {
    let meta = fs::metadata(path).map_err(|cause| AdminTokenError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AdminTokenError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let token = fs::read_to_string(path)
        .map_err(|cause| AdminTokenError::Io {
            path: path.to_path_buf(),
            cause,
        })?
        .trim()
        .to_string();
    if token.is_empty() {
        return Err(AdminTokenError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_and_checked_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/admin.token");
        let token = AdminToken::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let secret = read_token(&path).unwrap();
        assert!(secret.len() >= 43, "256 bits in base64url");
        assert!(token.permits(Some(format!("Bearer {secret}").as_bytes())));
        assert!(!token.permits(Some(format!("Bearer {secret}x").as_bytes())));
        assert!(!token.permits(Some(secret.as_bytes())));
        assert!(token.permits(Some(format!("bearer  {secret}").as_bytes())));
        assert!(!token.permits(Some(b"Bearer ")));
        assert!(!token.permits(None));
        // a second start keeps the same token
        AdminToken::load_or_create(&path).unwrap();
        assert_eq!(read_token(&path).unwrap(), secret);
    }

    #[test]
    fn refuses_a_world_readable_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        fs::write(&path, "abc").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            AdminToken::load(&path),
            Err(AdminTokenError::TooOpen { .. })
        ));
    }
}
