//! Percent-encoding (RFC 3986) for the query values and URIs pushgate
//! writes: unreserved characters as they are, every other byte as `%XX`,
//! except those a caller names as safe where it puts the value (`/` in a
//! path given as `?next=`).

pub fn percent_encode(s: &str, also_safe: &[u8]) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ if also_safe.contains(&b) => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_stay_the_rest_is_encoded() {
        assert_eq!(percent_encode("a b/é?", &[]), "a%20b%2F%C3%A9%3F");
        assert_eq!(percent_encode("/console/x y", b"/"), "/console/x%20y");
    }
}
