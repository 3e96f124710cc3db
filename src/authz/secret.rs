//! The secrets of a grant: the URL token, the authorization code and the
//! holder token. All come from the OS CSPRNG and are stored only as hashes:
//! tokens (192/256 bits) as SHA-256, codes (50 bits, too few to resist an
//! offline search) as an HMAC under a key kept in the data directory.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// Crockford's base-32: no I, L, O or U to mistake for 1, 0 or V.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Data characters of a code: 10 × 5 = 50 bits.
const CODE_DATA: usize = 10;

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS generator failing is not something to carry on from.
    OsRng
        .try_fill_bytes(&mut bytes)
        .unwrap_or_else(|e| panic!("no randomness from the operating system: {e}"));
    bytes
}

/// SHA-256 of a token, hex: how tokens are stored and looked up.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A fresh URL token (192 bits) and its hash.
pub fn new_url_token() -> (String, String) {
    let token = URL_SAFE_NO_PAD.encode(random::<24>());
    let hash = token_hash(&token);
    (token, hash)
}

/// A fresh holder token (256 bits) and its hash.
pub fn new_holder_token() -> (String, String) {
    let token = URL_SAFE_NO_PAD.encode(random::<32>());
    let hash = token_hash(&token);
    (token, hash)
}

/// A fresh grant id: 80 bits, readable.
pub fn new_grant_id() -> String {
    format!("g{}", hex(&random::<10>()))
}

/// Luhn mod 32 over symbol values: catches every single wrong character
/// and every swap of two neighbours except 0 with Z (as Luhn mod 10 misses
/// 0 with 9).
fn check_symbol(values: &[u8]) -> u8 {
    let n = 32u32;
    let mut factor = 2;
    let mut sum = 0;
    for &v in values.iter().rev() {
        let addend = factor * u32::from(v);
        factor = if factor == 2 { 1 } else { 2 };
        sum += addend / n + addend % n;
    }
    ((n - sum % n) % n) as u8
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("an authorization code has 11 characters (like ABCD-EFGH-JKM)")]
    Length,
    #[error("{0:?} is not a character of authorization codes")]
    Character(char),
    #[error("the code has a typo: its check character does not match")]
    Typo,
}

/// A new code for display (`XXXX-XXXX-XXX`) and its normalized form.
pub fn new_code() -> (String, String) {
    let bytes = random::<CODE_DATA>();
    let values: Vec<u8> = bytes.iter().map(|b| b & 31).collect();
    let mut symbols: Vec<u8> = values.iter().map(|v| ALPHABET[*v as usize]).collect();
    symbols.push(ALPHABET[check_symbol(&values) as usize]);
    let normalized = String::from_utf8_lossy(&symbols[..CODE_DATA]).into_owned();
    let all = String::from_utf8_lossy(&symbols).into_owned();
    (
        format!("{}-{}-{}", &all[..4], &all[4..8], &all[8..]),
        normalized,
    )
}

/// Reads a code as typed or spoken: any case, with or without dashes and
/// spaces, O for 0 and I or L for 1. A typo is reported as such before any
/// lookup. Returns the ten data characters.
pub fn parse_code(input: &str) -> Result<String, CodeError> {
    let mut values = Vec::with_capacity(CODE_DATA + 1);
    for c in input.chars().filter(|c| !matches!(c, '-' | ' ' | '\t')) {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        };
        let value = ALPHABET
            .iter()
            .position(|a| *a as char == c)
            .ok_or(CodeError::Character(c))?;
        values.push(value as u8);
        if values.len() > CODE_DATA + 1 {
            return Err(CodeError::Length);
        }
    }
    if values.len() != CODE_DATA + 1 {
        return Err(CodeError::Length);
    }
    if check_symbol(&values[..CODE_DATA]) != values[CODE_DATA] {
        return Err(CodeError::Typo);
    }
    Ok(values[..CODE_DATA]
        .iter()
        .map(|v| ALPHABET[*v as usize] as char)
        .collect())
}

/// The key under which codes are hashed (`data_dir/authz.key`, 0600).
pub struct CodeKey([u8; 32]);

impl CodeKey {
    pub fn load_or_create(path: &Path) -> io::Result<CodeKey> {
        if !path.exists() {
            let key = random::<32>();
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(mut file) => {
                    file.write_all(hex(&key).as_bytes())?;
                    file.sync_all()?;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let text = fs::read_to_string(path)?;
        let text = text.trim();
        let mut key = [0u8; 32];
        if text.len() != 64 || !text.is_ascii() {
            return Err(io::Error::other(format!(
                "{}: not a 256-bit hex key",
                path.display()
            )));
        }
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| io::Error::other(format!("{}: not a hex key", path.display())))?;
        }
        Ok(CodeKey(key))
    }

    #[cfg(test)]
    pub fn fixed() -> CodeKey {
        CodeKey([7; 32])
    }

    /// HMAC-SHA-256 of a normalized code, hex.
    pub fn hash(&self, normalized: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(normalized.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_however_they_are_typed() {
        for _ in 0..200 {
            let (display, normalized) = new_code();
            assert_eq!(display.len(), 13);
            assert_eq!(parse_code(&display).unwrap(), normalized);
            assert_eq!(
                parse_code(&display.to_lowercase().replace('-', " ")).unwrap(),
                normalized
            );
        }
        let (display, normalized) = ("0123-4567-89", "0123456789");
        let check = ALPHABET[check_symbol(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) as usize] as char;
        let code = format!("{display}{check}");
        assert_eq!(parse_code(&code).unwrap(), normalized);
        assert_eq!(
            parse_code(&code.replace('0', "o").replace('1', "l")).unwrap(),
            normalized
        );
    }

    #[test]
    fn every_single_typo_and_neighbour_swap_is_caught() {
        let (display, _) = new_code();
        let symbols: Vec<char> = display.chars().filter(|c| *c != '-').collect();
        for i in 0..symbols.len() {
            for replacement in ALPHABET.iter().map(|b| *b as char) {
                if replacement == symbols[i] {
                    continue;
                }
                let mut typo = symbols.clone();
                typo[i] = replacement;
                let typed: String = typo.iter().collect();
                assert_eq!(parse_code(&typed), Err(CodeError::Typo), "{typed}");
            }
            let pair = [symbols[i], *symbols.get(i + 1).unwrap_or(&'0')];
            if i + 1 < symbols.len()
                && symbols[i] != symbols[i + 1]
                && pair != ['0', 'Z']
                && pair != ['Z', '0']
            {
                let mut swapped = symbols.clone();
                swapped.swap(i, i + 1);
                let typed: String = swapped.iter().collect();
                assert_eq!(parse_code(&typed), Err(CodeError::Typo), "{typed}");
            }
        }
        assert_eq!(parse_code("ABCD-EFGH-JK"), Err(CodeError::Length));
        assert_eq!(parse_code("ABCD-EFGH-JKU"), Err(CodeError::Character('U')));
    }

    #[test]
    fn secrets_are_long_and_stored_hashed() {
        let (token, hash) = new_url_token();
        assert!(token.len() >= 32, "≥ 192 bits");
        assert_eq!(hash, token_hash(&token));
        assert_ne!(new_url_token().0, token);
        let key = CodeKey::fixed();
        assert_eq!(key.hash("0123456789").len(), 64);
        assert_ne!(key.hash("0123456789"), CodeKey([8; 32]).hash("0123456789"));
    }

    #[test]
    fn the_code_key_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authz.key");
        let a = CodeKey::load_or_create(&path).unwrap();
        let b = CodeKey::load_or_create(&path).unwrap();
        assert_eq!(a.hash("x"), b.hash("x"));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
