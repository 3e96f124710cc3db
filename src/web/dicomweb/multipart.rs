//! multipart/related bodies (RFC 2387) as DICOMweb sends them: a boundary,
//! each part with its own Content-Type, lengths known before the first byte
//! where every part's size is.

use rand::RngCore;

pub struct Multipart {
    boundary: String,
}

impl Multipart {
    pub fn new() -> Multipart {
        let mut bytes = [0u8; 12];
        rand::rng().fill_bytes(&mut bytes);
        let boundary = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Multipart { boundary }
    }

    /// The response's Content-Type, e.g. `multipart/related;
    /// type="application/dicom"; boundary=…`.
    pub fn content_type(&self, part_type: &str, extra: Option<(&str, &str)>) -> String {
        let mut value = format!("multipart/related; type=\"{part_type}\"");
        if let Some((name, v)) = extra {
            value.push_str(&format!("; {name}={v}"));
        }
        value.push_str(&format!("; boundary={}", self.boundary));
        value
    }

    /// What precedes a part: the delimiter and the part's headers.
    pub fn part_head(&self, content_type: &str, location: Option<&str>) -> Vec<u8> {
        let mut head = format!("--{}\r\nContent-Type: {content_type}\r\n", self.boundary);
        if let Some(location) = location {
            head.push_str(&format!("Content-Location: {location}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// What follows each part's content.
    pub const PART_TAIL: &'static [u8] = b"\r\n";

    /// The close delimiter, after the last part.
    pub fn close(&self) -> Vec<u8> {
        format!("--{}--\r\n", self.boundary).into_bytes()
    }
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_a_mime_parser_can_split() {
        let m = Multipart::new();
        let mut body = Vec::new();
        for part in [&b"first"[..], b"--not a boundary\r\n"] {
            body.extend(m.part_head("application/dicom", None));
            body.extend_from_slice(part);
            body.extend_from_slice(Multipart::PART_TAIL);
        }
        body.extend(m.close());
        let ct = m.content_type("application/dicom", Some(("transfer-syntax", "*")));
        let boundary = ct.rsplit("boundary=").next().unwrap();
        let text = String::from_utf8(body).unwrap();
        let parts: Vec<&str> = text.split(&format!("--{boundary}")).collect();
        // preamble (empty), two parts, the close "--\r\n"
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], "");
        assert!(parts[1].ends_with("\r\n\r\nfirst\r\n"));
        assert!(parts[2].ends_with("--not a boundary\r\n\r\n"));
        assert_eq!(parts[3], "--\r\n");
        assert_ne!(Multipart::new().boundary, m.boundary);
    }
}
