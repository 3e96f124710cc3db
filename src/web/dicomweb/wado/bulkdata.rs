//! WADO-RS bulk data (PS3.18 §10.4.1.1.5): a value as `/metadata` names
//! it, sent as byte ranges of the stored file.
//!
//! - other large values: `application/octet-stream`; an Encapsulated
//!   Document (0042,0011) also under its own MIME type (0042,0012), e.g.
//!   `application/pdf`, which OHIF asks for as a single part;
//! - native pixel data: its bytes, `application/octet-stream`;
//! - compressed pixel data: each frame as stored under its media type
//!   (`image/jpeg` …, PS3.18 Table 8.7.3-5), a video its whole stream
//!   (`video/mpeg2`, `video/mp4`, `video/H265`).
//!
//! `multipart/related` is the default; a bare media type gets the value
//! as a single part where it is one part (PS3.18 §8.7.3.1).

use std::sync::Arc;

use hyper::{Response, header};

use crate::journal::AccessKind;
use crate::pixels;
use crate::store::{InstanceKey, PixelLayout};
use crate::web::Body;
use crate::web::access::blocking;
use crate::web::dicomweb::accept::{self, MediaRange, Syntax};
use crate::web::dicomweb::multipart::Multipart;
use crate::web::dicomweb::{Access, DicomWebError, Target};

const OCTETS: &str = "application/octet-stream";
const ENCAPSULATED_DOCUMENT: &str = "00420011";

/// What an Encapsulated Document's neighbours in `/metadata` say of it.
struct Document {
    media_type: String,
    /// Encapsulated Document Length: the document without its pad byte.
    length: Option<u64>,
}

/// The document at tag path `path`, if it is an Encapsulated Document
/// whose MIME type the instance names.
fn document_of(access: &Access, key: &InstanceKey, path: &str) -> Option<Document> {
    let parent = path.strip_suffix(ENCAPSULATED_DOCUMENT)?;
    let metadata = access.app.index.metadata(key).ok().flatten()?;
    let value = |tag: &str| crate::ingest::metadata_value_at(&metadata, &format!("{parent}{tag}"));
    let media_type = value("00420012")?.as_str()?.trim().to_ascii_lowercase();
    // a MIME type, not anything a header could be made of
    let valid = media_type.split_once('/').is_some_and(|(t, s)| {
        !t.is_empty()
            && !s.is_empty()
            && media_type
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/.+-_".contains(&b))
    });
    valid.then(|| Document {
        media_type,
        length: value("00420015").and_then(|v| v.as_u64()),
    })
}

/// The video media type of a transfer syntax (PS3.18 Table 8.7.3-5).
fn video_type(ts: &str) -> Option<&'static str> {
    let ts = pixels::trim(ts);
    let base = ts.strip_suffix(".1").unwrap_or(ts);
    Some(match base {
        "1.2.840.10008.1.2.4.100" | "1.2.840.10008.1.2.4.101" => "video/mpeg2",
        "1.2.840.10008.1.2.4.102"
        | "1.2.840.10008.1.2.4.103"
        | "1.2.840.10008.1.2.4.104"
        | "1.2.840.10008.1.2.4.105"
        | "1.2.840.10008.1.2.4.106" => "video/mp4",
        "1.2.840.10008.1.2.4.107" | "1.2.840.10008.1.2.4.108" => "video/H265",
        _ => return None,
    })
}

/// How the parts go out: relabelled (the document's own type, or
/// octet-stream for a single stored frame), and whether as one bare part.
#[derive(Debug, PartialEq)]
struct Choice {
    label: Option<String>,
    single: bool,
}

/// Picks the first accepted way to send `count` parts labelled `offered`
/// (bare media type; `ts` their transfer syntax if compressed).
fn negotiate(
    offered: &str,
    ts: Option<&str>,
    document: Option<&str>,
    count: usize,
    ranges: &[MediaRange],
) -> Result<Choice, DicomWebError> {
    let mut single_refused = None;
    for part in accept::parts(ranges) {
        let asked = part.media_type.as_str();
        let label = if asked == "*/*" || asked == offered {
            None
        } else if asked == OCTETS && part.syntax == Some(Syntax::Stored) {
            // what cornerstone asks: the stored bytes as octet-stream
            ts.filter(|_| part.single)
                .map(|ts| format!("{OCTETS}; transfer-syntax={ts}"))
        } else if document == Some(asked) {
            Some(asked.to_string())
        } else {
            continue;
        };
        if part.single && count > 1 {
            single_refused.get_or_insert(part.media_type);
            continue;
        }
        return Ok(Choice {
            label,
            single: part.single,
        });
    }
    if single_refused.is_some() {
        return Err(super::single::too_many(count, "frame", offered));
    }
    let also = document.map(|d| format!(", or as {d}")).unwrap_or_default();
    Err(DicomWebError::NotAcceptable(format!(
        "this bulk data is sent as multipart/related; type=\"{offered}\"{also}"
    )))
}

pub(in crate::web::dicomweb) async fn bulkdata(
    access: Arc<Access>,
    instance: Target,
    path: String,
    ranges: &[MediaRange],
) -> Result<Response<Body>, DicomWebError> {
    let a = access.clone();
    let tag_path = path.clone();
    let found = blocking(move || {
        let instances = a.covered_target(&instance)?;
        let Some((key, record)) = instances.into_iter().next() else {
            return Err(crate::web::dicomweb::not_here());
        };
        let file = a.path_of(&key);
        // Reading the file for an Extended Offset Table or a marker scan is
        // blocking work: it is done here, not on the reactor.
        let frames = match &record.layout.pixel {
            Some(PixelLayout::Encapsulated { .. })
                if !record.layout.deflated && video_type(&record.transfer_syntax).is_none() =>
            {
                Some(pixels::frame_ranges(&file, &record))
            }
            _ => None,
        };
        let document = document_of(&a, &key, &tag_path);
        Ok((file, record, frames, document))
    })
    .await?;
    let (file, record, frames, document) = found;
    if record.layout.deflated {
        return Err(DicomWebError::NotAcceptable(
            "this instance is stored deflated: its bulk data has no byte range; retrieve the instance"
                .into(),
        ));
    }
    let ts = pixels::trim(&record.transfer_syntax).to_string();
    let is_pixel = matches!(path.as_str(), "7FE00010" | "7FE00008" | "7FE00009");
    let (offered, compressed, mut parts): (&str, bool, Vec<Vec<(u64, u64)>>) =
        match (&record.layout.pixel, is_pixel) {
            (Some(PixelLayout::Native { offset, length }), true) => {
                (OCTETS, false, vec![vec![(*offset, *length)]])
            }
            (Some(PixelLayout::Encapsulated { fragments, .. }), true) => {
                let all = || fragments.iter().map(|(o, l)| (*o, u64::from(*l)));
                if let Some(video) = video_type(&ts) {
                    (video, true, vec![all().collect()])
                } else {
                    let media = pixels::frame_media_type(&ts).unwrap_or(OCTETS);
                    // fragments that cannot be attributed to frames are not
                    // sent as if they were frames
                    let located = match frames {
                        Some(Ok(located)) => located,
                        Some(Err(e)) => return Err(super::frames::pixel_error(e)),
                        None => all().map(|range| vec![range]).collect(),
                    };
                    (media, true, located)
                }
            }
            _ => match record.layout.values.iter().find(|v| v.path == path) {
                Some(value) => (OCTETS, false, vec![vec![(value.offset, value.length)]]),
                None => return Err(crate::web::dicomweb::not_here()),
            },
        };
    let choice = negotiate(
        offered,
        compressed.then_some(ts.as_str()),
        document.as_ref().map(|d| d.media_type.as_str()),
        parts.len(),
        ranges,
    )?;
    let default_label = if compressed {
        format!("{offered}; transfer-syntax={ts}")
    } else {
        offered.to_string()
    };
    // the document under its own type: without the pad byte its length
    // leaves out
    if let (
        Some(label),
        Some(Document {
            length: Some(n), ..
        }),
    ) = (&choice.label, &document)
        && !label.starts_with(OCTETS)
    {
        for (_, length) in parts.iter_mut().flatten() {
            *length = (*length).min(*n);
        }
    }
    let label = choice.label.unwrap_or(default_label);
    if choice.single {
        let pieces = parts.pop().unwrap_or_default();
        return Ok(super::single::from_file(
            access,
            AccessKind::Frames,
            &label,
            file,
            pieces,
        ));
    }
    Ok(multipart(access, &label, file, parts))
}

/// Every part labelled `label`, in one multipart/related body.
fn multipart(
    access: Arc<Access>,
    label: &str,
    file: std::path::PathBuf,
    parts: Vec<Vec<(u64, u64)>>,
) -> Response<Body> {
    let mp = Multipart::new();
    let content_type = mp.content_type(label.split(';').next().unwrap_or(OCTETS), None);
    let body = super::frames::stored_parts(access, &mp, label, file, parts, 1);
    let mut response = Response::new(body);
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose(
        offered: &str,
        ts: Option<&str>,
        count: usize,
        accept: &str,
    ) -> Result<Choice, DicomWebError> {
        negotiate(
            offered,
            ts,
            Some("application/pdf").filter(|_| offered == OCTETS && ts.is_none()),
            count,
            &accept::parse(accept),
        )
    }

    #[test]
    fn multipart_by_default_single_when_named() {
        let multipart = Choice {
            label: None,
            single: false,
        };
        for accept in [
            "",
            "*/*",
            "multipart/related; type=\"application/octet-stream\"",
        ] {
            assert_eq!(
                choose(OCTETS, None, 1, accept).unwrap(),
                multipart,
                "{accept}"
            );
        }
        let single = Choice {
            label: None,
            single: true,
        };
        assert_eq!(choose(OCTETS, None, 1, OCTETS).unwrap(), single);
        // a document under its own type, single or multipart
        let pdf = choose(OCTETS, None, 1, "application/pdf").unwrap();
        assert_eq!(pdf.label.as_deref(), Some("application/pdf"));
        assert!(pdf.single);
        let pdf = choose(
            OCTETS,
            None,
            1,
            "multipart/related; type=\"application/pdf\"",
        )
        .unwrap();
        assert!(!pdf.single);
        // but not for values that are not that document
        assert!(
            choose(
                "image/jpeg",
                Some("1.2.840.10008.1.2.4.50"),
                1,
                "application/pdf"
            )
            .is_err()
        );
    }

    #[test]
    fn stored_frames_single_only_one() {
        let jpeg = Some("1.2.840.10008.1.2.4.50");
        let one = choose(
            "image/jpeg",
            jpeg,
            1,
            "application/octet-stream; transfer-syntax=*",
        )
        .unwrap();
        assert!(one.single);
        assert_eq!(
            one.label.as_deref(),
            Some("application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.50")
        );
        assert!(choose("image/jpeg", jpeg, 1, "image/jpeg").unwrap().single);
        let Err(DicomWebError::NotAcceptable(reason)) = choose("image/jpeg", jpeg, 3, "image/jpeg")
        else {
            panic!("406 expected")
        };
        assert!(reason.contains("has 3"), "{reason}");
        assert!(
            reason.contains("multipart/related; type=\"image/jpeg\""),
            "{reason}"
        );
        assert_eq!(video_type("1.2.840.10008.1.2.4.102.1"), Some("video/mp4"));
        assert_eq!(video_type("1.2.840.10008.1.2.4.50"), None);
    }
}
