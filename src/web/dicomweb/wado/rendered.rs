//! WADO-RS rendered and thumbnail resources (PS3.18 §10.4.1.1.3, §10.4.1.1.5,
//! §8.3.5): one frame as an 8-bit `image/jpeg` (the default) or
//! `image/png`.
//!
//! - `…/instances/{sop}/rendered` renders frame 1; `…/frames/{n}/rendered`
//!   frame n (one frame per request: a multi-frame rendering would be a
//!   video, which pushgate does not make).
//! - `…/thumbnail` of an instance or a frame: the same, scaled to fit
//!   256×256; of a series: its middle image; of a study: the middle image
//!   of its first series with images. Only what the grant covers is
//!   considered.
//! - Query parameters: `window=center,width,function`, `quality` (1–100,
//!   JPEG), `viewport=vw,vh` (scale to fit; cropping is refused with 400).
//!   `annotation` and `iccprofile` are accepted and ignored (nothing is
//!   burnt in; no ICC profile is embedded).
//!
//! Rendering is CPU work: at most `Gates::renders` run at once, on the
//! blocking pool; the others wait their turn.

use std::sync::Arc;

use hyper::{Response, StatusCode, header};

use super::frames::pixel_error;
use crate::journal::AccessKind;
use crate::pixels::{self, ImageFormat, RenderOptions, Window};
use crate::store::{InstanceKey, InstanceRecord};
use crate::web::Body;
use crate::web::access::blocking;
use crate::web::dicomweb::accept::{self, MediaRange};
use crate::web::dicomweb::{Access, DicomWebError, Target};

const THUMBNAIL_FIT: (u32, u32) = (256, 256);
const DEFAULT_QUALITY: u8 = 90;
/// The largest viewport asked for: bigger is not scaled up anyway.
const MAX_VIEWPORT: u32 = 16_384;

/// What is rendered: the instance chosen for `target` and its frame.
pub(in crate::web::dicomweb) enum What {
    Rendered { target: Target, frame: Option<u32> },
    Thumbnail { target: Target, frame: Option<u32> },
}

/// The image format, window and box a request asks for.
type Asked = (ImageFormat, Option<Window>, Option<(u32, u32)>);

fn options(
    query: &[(String, String)],
    ranges: &[MediaRange],
    thumbnail: bool,
) -> Result<Asked, DicomWebError> {
    let mut quality = DEFAULT_QUALITY;
    let mut window = None;
    let mut fit = thumbnail.then_some(THUMBNAIL_FIT);
    for (name, value) in query {
        match name.as_str() {
            "quality" => {
                quality = value
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| {
                        DicomWebError::BadRequest(format!(
                            "quality {value:?} is not a number from 1 to 100"
                        ))
                    })?;
            }
            "window" => {
                window = Some(Window::from_query(value).map_err(DicomWebError::BadRequest)?);
            }
            "viewport" => {
                let numbers: Vec<&str> = value.split(',').map(str::trim).collect();
                let size = |s: &str| {
                    s.parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_VIEWPORT).contains(n))
                };
                match numbers[..] {
                    [w, h] => match (size(w), size(h)) {
                        (Some(w), Some(h)) => fit = Some((w, h)),
                        _ => {
                            return Err(DicomWebError::BadRequest(format!(
                                "viewport {value:?} is not vw,vh (1 to {MAX_VIEWPORT} pixels)"
                            )));
                        }
                    },
                    _ => {
                        return Err(DicomWebError::BadRequest(format!(
                            "viewport {value:?}: pushgate scales to vw,vh; it does not crop (sx,sy,sw,sh)"
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    let format = match accept::choose(ranges, &["image/jpeg", "image/png"]) {
        Some("image/png") => ImageFormat::Png,
        Some(_) => ImageFormat::Jpeg { quality },
        None => {
            return Err(DicomWebError::NotAcceptable(
                "renderings are image/jpeg or image/png".into(),
            ));
        }
    };
    Ok((format, window, fit))
}

/// The instance a rendering of `target` shows, and its frame: the instance
/// itself, or the middle image of a series, or of a study's first series
/// with images. Blocking.
fn chosen(
    access: &Access,
    target: &Target,
    frame: Option<u32>,
) -> Result<(InstanceKey, InstanceRecord, u32), DicomWebError> {
    let covered = access.covered_target(target)?;
    if let Some(sop) = target.instance() {
        let (key, record) = covered
            .into_iter()
            .find(|(k, _)| &k.sop == sop)
            .ok_or_else(crate::web::dicomweb::not_here)?;
        return Ok((key, record, frame.unwrap_or(1)));
    }
    // covered is in viewing order: series by number, then instances
    let mut images: Vec<(InstanceKey, InstanceRecord)> = Vec::new();
    for (key, record) in covered {
        if record.layout.pixel.is_none() {
            continue;
        }
        if images
            .first()
            .is_some_and(|(first, _)| first.series != key.series)
        {
            break;
        }
        images.push((key, record));
    }
    if images.is_empty() {
        return Err(DicomWebError::NotFound(
            "nothing with pixel data to show here".into(),
        ));
    }
    let middle = images.len() / 2;
    let (key, record) = images.swap_remove(middle);
    let frames = pixels::number_of_frames(&record);
    Ok((key, record, frame.unwrap_or(frames.div_ceil(2).max(1))))
}

pub(in crate::web::dicomweb) async fn render(
    access: Arc<Access>,
    what: What,
    ranges: &[MediaRange],
    query: &[(String, String)],
) -> Result<Response<Body>, DicomWebError> {
    let (target, frame, thumbnail) = match what {
        What::Rendered { target, frame } => {
            if target.instance().is_none() {
                return Err(DicomWebError::BadRequest(
                    "pushgate renders instances and frames; for a study or series ask for its thumbnail"
                        .into(),
                ));
            }
            (target, frame, false)
        }
        What::Thumbnail { target, frame } => (target, frame, true),
    };
    let (format, window, fit) = options(query, ranges, thumbnail)?;
    let _permit = access
        .app
        .gates
        .renders
        .acquire()
        .await
        .map_err(|e| crate::web::WebError::Internal(e.to_string()))?;
    let a = access.clone();
    let image = blocking(move || {
        let (key, record, frame) = chosen(&a, &target, frame)?;
        let file = a.path_of(&key);
        let options = RenderOptions {
            frame,
            window,
            format,
            fit,
        };
        pixels::render(&file, &record, &options).map_err(pixel_error)
    })
    .await?;
    let kind = if thumbnail {
        AccessKind::Thumbnail
    } else {
        AccessKind::Rendered
    };
    let len = image.len() as u64;
    let a = access.clone();
    // journaling is blocking (a write to the journal's queue and index)
    blocking(move || {
        a.served(kind, 1, len);
        Ok::<_, DicomWebError>(())
    })
    .await?;
    let mut response = crate::web::full(StatusCode::OK, format.media_type(), image);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_are_checked_with_reasons() {
        let any = accept::parse("");
        let (format, window, fit) = options(&q(&[]), &any, true).unwrap();
        assert_eq!(
            format,
            ImageFormat::Jpeg {
                quality: DEFAULT_QUALITY
            }
        );
        assert_eq!((window, fit), (None, Some(THUMBNAIL_FIT)));
        let (format, window, fit) = options(
            &q(&[
                ("quality", "40"),
                ("window", "40,400,linear"),
                ("viewport", "64,32"),
            ]),
            &any,
            false,
        )
        .unwrap();
        assert_eq!(format, ImageFormat::Jpeg { quality: 40 });
        assert_eq!(window.map(|w| (w.center, w.width)), Some((40.0, 400.0)));
        assert_eq!(fit, Some((64, 32)));
        for bad in [
            ("quality", "0"),
            ("quality", "101"),
            ("window", "40,400"),
            ("viewport", "0,10"),
            ("viewport", "10,10,0,0,5,5"),
        ] {
            assert!(
                matches!(
                    options(&q(&[bad]), &any, false),
                    Err(DicomWebError::BadRequest(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn png_when_preferred_jpeg_for_browsers() {
        let png = accept::parse("image/png, image/jpeg;q=0.5");
        assert_eq!(options(&[], &png, false).unwrap().0, ImageFormat::Png);
        let browser =
            accept::parse("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8");
        assert!(matches!(
            options(&[], &browser, true).unwrap().0,
            ImageFormat::Jpeg { .. }
        ));
        assert!(matches!(
            options(&[], &accept::parse("image/gif"), true),
            Err(DicomWebError::NotAcceptable(_))
        ));
    }
}
