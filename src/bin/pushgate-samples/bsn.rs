//! Dutch citizen service number (Burgerservicenummer, BSN) helpers.

/// OID of the BSN namespace (Universal Entity ID in Issuer of Patient ID
/// Qualifiers Sequence).
pub const BSN_OID: &str = "2.16.840.1.113883.2.4.6.3";

/// Issuer of Patient ID conventionally used in the Netherlands for the BSN.
pub const BSN_ISSUER: &str = "NLMINBIZA";

/// The BSN "11-proof" (elfproef): nine digits d1..d9 with
/// `9*d1 + 8*d2 + ... + 2*d8 - 1*d9` divisible by 11.
pub fn is_valid_bsn(bsn: &str) -> bool {
    let digits: Vec<i64> = bsn
        .bytes()
        .map(|b| i64::from(b) - i64::from(b'0'))
        .collect();
    if digits.len() != 9 || digits.iter().any(|d| !(0..=9).contains(d)) {
        return false;
    }
    let sum: i64 = digits[..8]
        .iter()
        .zip((2..=9).rev())
        .map(|(d, w)| d * w)
        .sum::<i64>()
        - digits[8];
    sum % 11 == 0 && digits.iter().any(|&d| d != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_test_numbers() {
        for bsn in [
            "999912343",
            "999920017",
            "999930023",
            "999940016",
            "999950022",
            "111222333",
        ] {
            assert!(is_valid_bsn(bsn), "{bsn}");
        }
    }

    #[test]
    fn rejects_invalid() {
        assert!(!is_valid_bsn("999912344")); // wrong check digit
        assert!(!is_valid_bsn("123456789"));
        assert!(!is_valid_bsn("000000000"));
        assert!(!is_valid_bsn("99991234")); // too short
        assert!(!is_valid_bsn("9999123430")); // too long
        assert!(!is_valid_bsn("99991234a"));
        assert!(!is_valid_bsn(""));
    }

    #[test]
    fn single_digit_change_is_detected() {
        let good = b"999912343";
        for pos in 0..9 {
            for d in b'0'..=b'9' {
                if d == good[pos] {
                    continue;
                }
                let mut s = *good;
                s[pos] = d;
                let s = std::str::from_utf8(&s).unwrap_or_default().to_owned();
                assert!(!is_valid_bsn(&s), "{s}");
            }
        }
    }
}
