//! WADO-RS frames (PS3.18 §10.4.1.1.4): `…/instances/{sop}/frames/{list}`.
//!
//! Two ways to send a frame, negotiated from the Accept value:
//! - decoded: `application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1`
//!   (the default), native little-endian pixels as Explicit VR Little
//!   Endian would hold them;
//! - as stored: the compressed codestream under its media type
//!   (`image/jpeg`, `image/jls`, `image/jp2`, `image/jphc`,
//!   `image/dicom-rle` …, PS3.18 Table 8.7.3-5), or under
//!   `application/octet-stream` with the stored transfer syntax when the
//!   client asked for octet-stream with `transfer-syntax=*` (what OHIF and
//!   dicomweb-client send).
//!
//! Stored frames and frames of native little-endian instances are byte
//! ranges of the file, sent with a Content-Length. Decoded frames are
//! decoded one at a time while the response streams; the first is decoded
//! before the status line, so that an undecodable instance is a precise
//! error rather than a cut response.

use std::io::Write;
use std::sync::Arc;

use hyper::{Response, StatusCode, header};

use crate::journal::AccessKind;
use crate::pixels::{self, PixelError, trim};
use crate::store::{InstanceRecord, PixelLayout};
use crate::web::Body;
use crate::web::access::blocking;
use crate::web::dicomweb::accept::{self, EXPLICIT_LE, MediaRange, Syntax};
use crate::web::dicomweb::multipart::Multipart;
use crate::web::dicomweb::{Access, DicomWebError, Target};
use crate::web::stream::produced_while;

/// How the frames of this response travel.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Send {
    /// File ranges as stored, each part labelled `part_type`.
    Stored { part_type: String },
    /// Decoded to native little endian.
    Decoded,
}

const DECODED_TYPE: &str = "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1";

/// Native little endian, not deflated: the stored frame bytes are the
/// decoded ones.
fn stored_is_decoded(record: &InstanceRecord) -> bool {
    !record.layout.deflated
        && matches!(record.layout.pixel, Some(PixelLayout::Native { .. }))
        && matches!(
            trim(&record.transfer_syntax),
            "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1"
        )
}

/// Picks how to send `count` frames of `record`, by the client's
/// preference, and whether as one bare part (a single-part media type,
/// one frame only).
fn negotiate(
    record: &InstanceRecord,
    ranges: &[MediaRange],
    count: usize,
) -> Result<(Send, bool), DicomWebError> {
    let ts = trim(&record.transfer_syntax);
    let compressed = matches!(record.layout.pixel, Some(PixelLayout::Encapsulated { .. }));
    let stored_media = pixels::frame_media_type(ts).filter(|_| compressed);
    let decodable = pixels::can_decode(ts);
    // what "as stored" means when the client asked for octet-stream
    let stored_octets = || {
        if compressed {
            Send::Stored {
                part_type: format!("application/octet-stream; transfer-syntax={ts}"),
            }
        } else {
            // native: as stored is native little endian once byte-swapped
            // or inflated, which decoding does and ranges cannot
            Send::Decoded
        }
    };
    let mut single_refused = None;
    for part in accept::parts(ranges) {
        if part.single && count > 1 {
            single_refused.get_or_insert(part.media_type);
            continue;
        }
        let choice = match (part.media_type.as_str(), &part.syntax) {
            ("application/octet-stream", None) if decodable => Some(Send::Decoded),
            ("application/octet-stream", Some(Syntax::Uid(uid))) if uid == EXPLICIT_LE => {
                decodable.then_some(Send::Decoded)
            }
            ("application/octet-stream", Some(Syntax::Stored)) => Some(stored_octets()),
            ("application/octet-stream", Some(Syntax::Uid(uid))) if compressed && uid == ts => {
                Some(stored_octets())
            }
            ("*/*", Some(Syntax::Stored)) => Some(match stored_media {
                Some(media) => Send::Stored {
                    part_type: format!("{media}; transfer-syntax={ts}"),
                },
                None => stored_octets(),
            }),
            ("*/*", _) if decodable => Some(Send::Decoded),
            ("*/*", _) => stored_media.map(|media| Send::Stored {
                part_type: format!("{media}; transfer-syntax={ts}"),
            }),
            (asked, syntax) => match stored_media {
                Some(media)
                    if media == asked
                        && match syntax {
                            None | Some(Syntax::Stored) => true,
                            Some(Syntax::Uid(uid)) => uid == ts,
                        } =>
                {
                    Some(Send::Stored {
                        part_type: format!("{media}; transfer-syntax={ts}"),
                    })
                }
                _ => None,
            },
        };
        if let Some(choice) = choice {
            return Ok((choice, part.single));
        }
    }
    if let Some(media_type) = single_refused {
        return Err(super::single::too_many(count, "frame", &media_type));
    }
    let mut offered = Vec::new();
    if decodable {
        offered.push(format!(
            "multipart/related; type=\"{DECODED_TYPE}\" (decoded)"
        ));
    } else {
        offered.push(format!(
            "not decoded: pushgate has no decoder for transfer syntax {ts}"
        ));
    }
    if let Some(media) = stored_media {
        offered.push(format!(
            "multipart/related; type=\"{media}\"; transfer-syntax={ts} (as stored)"
        ));
    }
    if compressed {
        offered.push("type=\"application/octet-stream\"; transfer-syntax=* (as stored)".into());
    }
    Err(DicomWebError::NotAcceptable(format!(
        "the frames of this instance are offered as {}",
        offered.join("; or ")
    )))
}

/// A pixel error as the holder sees it.
pub(super) fn pixel_error(e: PixelError) -> DicomWebError {
    match e {
        PixelError::NoPixelData => DicomWebError::NotFound("the instance has no pixel data".into()),
        e @ PixelError::FrameOutOfRange { .. } => DicomWebError::NotFound(e.to_string()),
        e @ (PixelError::UnsupportedTransferSyntax(_)
        | PixelError::Unsupported(_)
        | PixelError::FramesNotLocated(_)
        | PixelError::TooLarge { .. }) => DicomWebError::NotAcceptable(format!(
            "{e}; the instance itself can be retrieved as stored (transfer-syntax=*)"
        )),
        PixelError::Io(e) => DicomWebError::Web(crate::web::WebError::Internal(format!(
            "reading the stored instance: {e}"
        ))),
        e => DicomWebError::Undecodable(format!(
            "{e}; the instance itself can be retrieved as stored (transfer-syntax=*)"
        )),
    }
}

pub(in crate::web::dicomweb) async fn frames(
    access: Arc<Access>,
    instance: Target,
    frames: Vec<u32>,
    ranges: &[MediaRange],
) -> Result<Response<Body>, DicomWebError> {
    let ranges = ranges.to_vec();
    let a = access.clone();
    let prepared = blocking(move || {
        let (key, record) = a
            .covered_target(&instance)?
            .into_iter()
            .next()
            .ok_or_else(crate::web::dicomweb::not_here)?;
        if record.layout.pixel.is_none() {
            return Err(pixel_error(PixelError::NoPixelData));
        }
        let count = pixels::number_of_frames(&record);
        if let Some(&frame) = frames.iter().find(|&&f| f > count) {
            return Err(pixel_error(PixelError::FrameOutOfRange {
                frame,
                frames: count,
            }));
        }
        let (send, single) = negotiate(&record, &ranges, frames.len())?;
        let file = a.path_of(&key);
        let plan = match &send {
            Send::Stored { part_type } => Plan::Ranges {
                part_type: part_type.clone(),
                ranges: located(&file, &record, &frames)?,
            },
            Send::Decoded if stored_is_decoded(&record) => Plan::Ranges {
                part_type: DECODED_TYPE.into(),
                ranges: located(&file, &record, &frames)?,
            },
            Send::Decoded => {
                // the first frame decoded now: errors before the status line
                let first = pixels::decode_frame(&file, &record, frames[0]).map_err(pixel_error)?;
                Plan::Decode { first }
            }
        };
        Ok((file, record, frames, plan, single))
    })
    .await?;
    let (file, record, frames, plan, single) = prepared;
    if single {
        // one frame, negotiated under a single-part media type
        return Ok(match plan {
            Plan::Ranges {
                part_type,
                mut ranges,
            } => super::single::from_file(
                access,
                AccessKind::Frames,
                &part_type,
                file,
                ranges.pop().unwrap_or_default(),
            ),
            Plan::Decode { first } => {
                super::single::from_bytes(access, AccessKind::Frames, DECODED_TYPE, first)
            }
        });
    }
    let mp = Multipart::new();
    let (response, part_type) = match plan {
        Plan::Ranges { part_type, ranges } => {
            let count = frames.len() as u32;
            let body = stored_parts(access, &mp, &part_type, file, ranges, count);
            (Response::new(body), part_type)
        }
        Plan::Decode { first } => {
            let head = mp.part_head(DECODED_TYPE, None);
            let closing = mp.close();
            let count = frames.len() as u32;
            let guard = access.guard(AccessKind::Frames);
            let body = produced_while(None, guard, move |sink| {
                let result = (|| {
                    sink.write_all(&head)?;
                    sink.write_all(&first)?;
                    sink.write_all(Multipart::PART_TAIL)?;
                    drop(first);
                    pixels::decode_frames(&file, &record, &frames[1..], |_, bytes| {
                        sink.write_all(&head)?;
                        sink.write_all(&bytes)?;
                        sink.write_all(Multipart::PART_TAIL)?;
                        Ok(())
                    })
                    .map_err(|e| match e {
                        PixelError::Io(e) => e,
                        e => std::io::Error::other(e.to_string()),
                    })?;
                    sink.write_all(&closing)?;
                    sink.flush()
                })();
                access.served(AccessKind::Frames, count, sink.sent);
                result
            });
            (Response::new(body), DECODED_TYPE.to_string())
        }
    };
    let mut response = response;
    *response.status_mut() = StatusCode::OK;
    let bare = part_type
        .split(';')
        .next()
        .unwrap_or("application/octet-stream");
    let ts = part_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("transfer-syntax="));
    let content_type = mp.content_type(bare, ts.map(|ts| ("transfer-syntax", ts)));
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    Ok(response)
}

enum Plan {
    Ranges {
        part_type: String,
        ranges: Vec<pixels::FrameRanges>,
    },
    Decode {
        first: Vec<u8>,
    },
}

/// The file ranges of `frames` (numbered from 1).
fn located(
    file: &std::path::Path,
    record: &InstanceRecord,
    frames: &[u32],
) -> Result<Vec<pixels::FrameRanges>, DicomWebError> {
    let all = pixels::frame_ranges(file, record).map_err(pixel_error)?;
    frames
        .iter()
        .map(|&f| {
            all.get(f as usize - 1).cloned().ok_or_else(|| {
                pixel_error(PixelError::FramesNotLocated(format!(
                    "{} frames located, frame {f} asked",
                    all.len()
                )))
            })
        })
        .collect()
}

/// File ranges as stored, each entry of `parts` one part labelled `label`,
/// in one multipart/related body whose length is known up front; `count`
/// is what the journal records as served (frames, or one value).
pub(super) fn stored_parts(
    access: Arc<Access>,
    mp: &Multipart,
    label: &str,
    file: std::path::PathBuf,
    parts: Vec<Vec<(u64, u64)>>,
    count: u32,
) -> Body {
    let head = mp.part_head(label, None);
    let closing = mp.close();
    let len = parts
        .iter()
        .map(|r| {
            head.len() as u64
                + r.iter().map(|(_, l)| l).sum::<u64>()
                + Multipart::PART_TAIL.len() as u64
        })
        .sum::<u64>()
        + closing.len() as u64;
    let guard = access.guard(AccessKind::Frames);
    produced_while(Some(len), guard, move |sink| {
        let result = (|| {
            for pieces in &parts {
                sink.write_all(&head)?;
                for &(offset, length) in pieces {
                    sink.send_file(&file, offset, length)?;
                }
                sink.write_all(Multipart::PART_TAIL)?;
            }
            sink.write_all(&closing)?;
            sink.flush()
        })();
        access.served(AccessKind::Frames, count, sink.sent);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BulkLayout, InstanceAttrs, Source, Timestamp};

    fn record(ts: &str, compressed: bool) -> InstanceRecord {
        InstanceRecord {
            attrs: InstanceAttrs::default(),
            transfer_syntax: ts.into(),
            size: 110,
            mtime_ns: 0,
            dataset_offset: 0,
            crc32: None,
            received_at: Timestamp(0),
            source: Source::Reindex,
            layout: BulkLayout {
                pixel: Some(if compressed {
                    PixelLayout::Encapsulated {
                        offset_table: Vec::new(),
                        fragments: vec![(100, 10)],
                    }
                } else {
                    PixelLayout::Native {
                        offset: 100,
                        length: 10,
                    }
                }),
                ..BulkLayout::default()
            },
        }
    }

    fn send(ts: &str, compressed: bool, accept: &str) -> Result<Send, DicomWebError> {
        negotiate(&record(ts, compressed), &accept::parse(accept), 1).map(|(send, _)| send)
    }

    const JPEG_LOSSLESS: &str = "1.2.840.10008.1.2.4.70";

    #[test]
    fn default_is_decoded_little_endian() {
        for accept in [
            "",
            "*/*",
            "multipart/related; type=\"application/octet-stream\"",
            "multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1",
        ] {
            assert_eq!(
                send(JPEG_LOSSLESS, true, accept).unwrap(),
                Send::Decoded,
                "{accept}"
            );
            assert_eq!(
                send("1.2.840.10008.1.2", false, accept).unwrap(),
                Send::Decoded
            );
        }
    }

    #[test]
    fn as_stored_by_media_type_or_wildcard_syntax() {
        let jpeg = Send::Stored {
            part_type: format!("image/jpeg; transfer-syntax={JPEG_LOSSLESS}"),
        };
        assert_eq!(
            send(
                JPEG_LOSSLESS,
                true,
                "multipart/related; type=\"image/jpeg\""
            )
            .unwrap(),
            jpeg
        );
        assert_eq!(
            send(
                JPEG_LOSSLESS,
                true,
                "multipart/related; type=\"*/*\"; transfer-syntax=*"
            )
            .unwrap(),
            jpeg
        );
        assert_eq!(
            send(
                JPEG_LOSSLESS,
                true,
                "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*"
            )
            .unwrap(),
            Send::Stored {
                part_type: format!("application/octet-stream; transfer-syntax={JPEG_LOSSLESS}")
            }
        );
        // native: "as stored" is the native pixels
        assert_eq!(
            send(
                "1.2.840.10008.1.2",
                false,
                "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*"
            )
            .unwrap(),
            Send::Decoded
        );
    }

    #[test]
    fn refusals_say_what_is_offered() {
        // JPEG 2000 asked of a JPEG instance: no transcoding between codecs
        let Err(DicomWebError::NotAcceptable(reason)) =
            send(JPEG_LOSSLESS, true, "multipart/related; type=\"image/jp2\"")
        else {
            panic!("406 expected");
        };
        assert!(reason.contains("image/jpeg"), "{reason}");
        // an undecodable syntax: octet-stream without * is refused, with why
        let Err(DicomWebError::NotAcceptable(reason)) = send(
            "1.2.840.10008.1.2.4.100",
            true,
            "multipart/related; type=\"application/octet-stream\"",
        ) else {
            panic!("406 expected");
        };
        assert!(reason.contains("no decoder"), "{reason}");
        assert!(
            send(
                "1.2.840.10008.1.2.4.100",
                true,
                "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*"
            )
            .is_ok()
        );
    }

    #[test]
    fn single_part_types_answer_one_frame_bare() {
        let record = record(JPEG_LOSSLESS, true);
        let ranges = accept::parse("application/octet-stream");
        assert_eq!(
            negotiate(&record, &ranges, 1).unwrap(),
            (Send::Decoded, true)
        );
        let ranges = accept::parse("image/jpeg");
        let (send, single) = negotiate(&record, &ranges, 1).unwrap();
        assert!(single && matches!(send, Send::Stored { .. }));
        // more than one frame cannot be one part
        let Err(DicomWebError::NotAcceptable(reason)) = negotiate(&record, &ranges, 3) else {
            panic!("406 expected");
        };
        assert!(
            reason.contains("multipart/related; type=\"image/jpeg\""),
            "{reason}"
        );
        // unless the client also accepts multipart
        let ranges = accept::parse("image/jpeg, multipart/related; type=image/jpeg; q=0.5");
        assert!(!negotiate(&record, &ranges, 3).unwrap().1);
    }
}
