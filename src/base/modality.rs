//! A DICOM Modality code (0008,0060) as a grant's scope names it: a
//! defined term such as `CT` or `PR`, checked where it enters (the share
//! form, the admin API, `console.exclude_by_default`).

/// The code in its stored form (trimmed, upper case), or None when it is
/// not one: empty, longer than 16 characters (the CS limit), or anything
/// but letters, digits and `_`.
pub fn modality_code(value: &str) -> Option<String> {
    let code = value.trim().to_ascii_uppercase();
    let fits = !code.is_empty()
        && code.len() <= 16
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    fits.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_normalised_and_the_rest_refused() {
        assert_eq!(modality_code(" pr ").as_deref(), Some("PR"));
        assert_eq!(modality_code("OCT_A").as_deref(), Some("OCT_A"));
        for bad in ["", "  ", "P R", "PR;", "ABCDEFGHIJKLMNOPQ", "PR\u{0}"] {
            assert_eq!(modality_code(bad), None, "{bad:?}");
        }
    }
}
