//! What comes over the wire, taken apart for assertions: multipart/related
//! bodies, and byte comparisons that do not print megabytes.

use super::Reply;

/// The parts of a multipart/related answer: (headers, content). Asserts
/// that the body ends with the close delimiter.
pub fn parts(reply: &Reply) -> Vec<(String, Vec<u8>)> {
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/related"),
        "{} {content_type}: {}",
        reply.status,
        reply.body.chars().take(300).collect::<String>()
    );
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .expect("a boundary")
        .trim_matches('"');
    let delimiter = format!("--{boundary}").into_bytes();
    let body = &reply.raw;
    let mut positions = Vec::new();
    let mut i = 0;
    while let Some(at) = body[i..]
        .windows(delimiter.len())
        .position(|w| w == delimiter.as_slice())
    {
        positions.push(i + at);
        i += at + delimiter.len();
    }
    let last = *positions.last().expect("a close delimiter");
    assert_eq!(
        &body[last + delimiter.len()..],
        b"--\r\n",
        "the body ends with the close delimiter"
    );
    positions
        .windows(2)
        .map(|pair| {
            let part = &body[pair[0] + delimiter.len() + 2..pair[1] - 2];
            let split = part.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            (
                String::from_utf8_lossy(&part[..split]).to_string(),
                part[split + 4..].to_vec(),
            )
        })
        .collect()
}

/// Byte equality without printing megabytes when it fails.
pub fn same_bytes(ours: &[u8], theirs: &[u8], what: &str) {
    if ours != theirs {
        let at = ours.iter().zip(theirs).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes vs {} expected, first difference at {at:?}",
            ours.len(),
            theirs.len()
        );
    }
}
