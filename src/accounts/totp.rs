//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 30
//! second steps, 6 digits — what every authenticator app reads from an
//! `otpauth://` QR code. Small enough to write here: the crates that do it
//! bring a clock, QR rendering and base32 of their own.

use hmac::{Hmac, Mac};
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Seconds per step.
pub const STEP: u64 = 30;
/// Steps before and after now that still count (clock drift).
const WINDOW: u64 = 1;

/// A new 160-bit secret (the RFC's recommended length for SHA-1).
pub fn new_secret() -> Result<Vec<u8>, String> {
    let mut secret = vec![0u8; 20];
    OsRng
        .try_fill_bytes(&mut secret)
        .map_err(|e| format!("no randomness from the operating system: {e}"))?;
    Ok(secret)
}

/// The secret as people type it into an app: base32 without padding.
pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The code for step `counter` (RFC 4226 section 5.3).
pub(super) fn hotp(secret: &[u8], counter: u64) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        // HMAC takes a key of any length
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 1_000_000
}

/// The step a moment falls in.
pub fn step_at(unix_seconds: u64) -> u64 {
    unix_seconds / STEP
}

/// Checks `code` at `unix_seconds` within the window; returns the step it
/// matched, which must be later than `last_used` (a code works once).
pub fn verify(secret: &[u8], code: &str, unix_seconds: u64, last_used: Option<u64>) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(unix_seconds);
    let mut matched = None;
    // every step of the window is computed and compared, matched or not
    for step in now.saturating_sub(WINDOW)..=now + WINDOW {
        let expected = format!("{:06}", hotp(secret, step));
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && matched.is_none() {
            matched = Some(step);
        }
    }
    matched.filter(|step| last_used.is_none_or(|last| *step > last))
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let label = format!("{issuer}:{account}");
    format!(
        "otpauth://totp/{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={STEP}",
        percent(&label),
        base32(secret),
        percent(issuer)
    )
}

fn percent(s: &str) -> String {
    crate::base::percent_encode(s, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, the last six digits of each.
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(format!("{:06}", hotp(secret, step_at(time))), code);
            assert!(verify(secret, code, time, None).is_some());
        }
    }

    #[test]
    fn window_and_replay() {
        let secret = b"12345678901234567890";
        let t = 1_234_567_890;
        let code = format!("{:06}", hotp(secret, step_at(t)));
        assert!(
            verify(secret, &code, t + STEP, None).is_some(),
            "one step late"
        );
        assert!(
            verify(secret, &code, t + 3 * STEP, None).is_none(),
            "too late"
        );
        let used = verify(secret, &code, t, None).unwrap();
        assert!(verify(secret, &code, t, Some(used)).is_none(), "used once");
        assert!(verify(secret, "12345", t, None).is_none());
        assert!(verify(secret, "abcdef", t, None).is_none());
    }
}
