//! `GET /console/share/{study}/thumb/{series}`: the series' middle image,
//! small, for the share form — rendered by the same `pixels::render` the
//! public site's WADO-RS thumbnails use, within the same limit of
//! renderings at once (`Gates::renders`). A series without pixel data
//! (reports, presentation states) or one that does not render gets a
//! plain placeholder, so the form never shows a broken image.

use hyper::{Response, StatusCode, header};

use super::blocking;
use crate::console::Console;
use crate::pixels::{self, ImageFormat, RenderOptions};
use crate::store::Uid;
use crate::web::{Body, Refusal, WebError, full};

/// Fits in the form's 64×64 cell at twice the pixel density.
const FIT: (u32, u32) = (128, 128);

const PLACEHOLDER: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect width="64" height="64" fill="#eee"/><path d="M20 22h24v20H20z" fill="none" stroke="#aaa" stroke-width="2"/><path d="M24 28h16M24 33h16M24 38h10" stroke="#aaa" stroke-width="2"/></svg>"##;

pub async fn thumbnail(
    console: &Console,
    study: &str,
    series: &str,
) -> Result<Response<Body>, Refusal> {
    let (Ok(study), Ok(series)) = (Uid::parse(study), Uid::parse(series)) else {
        return Err(WebError::NotFound.into());
    };
    let _permit = console
        .app
        .gates
        .renders
        .acquire()
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let index = console.app.index.clone();
    let files = console.app.files.clone();
    let image = blocking(move || {
        let mut images: Vec<_> = index
            .instances(&study, Some(&series))?
            .into_iter()
            .filter(|(_, r)| r.layout.pixel.is_some())
            .collect();
        if images.is_empty() {
            return Ok(None);
        }
        images.sort_by_key(|(k, r)| (r.attrs.instance_number.unwrap_or(i64::MAX), k.sop.clone()));
        let (key, record) = images.swap_remove(images.len() / 2);
        let options = RenderOptions {
            frame: pixels::number_of_frames(&record).div_ceil(2).max(1),
            window: None,
            format: ImageFormat::Jpeg { quality: 80 },
            fit: Some(FIT),
        };
        Ok(pixels::render(&files.path_of(&key), &record, &options).ok())
    })
    .await?;
    let mut response = match image {
        Some(jpeg) => full(StatusCode::OK, "image/jpeg", jpeg),
        None => full(StatusCode::OK, "image/svg+xml", PLACEHOLDER),
    };
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, max-age=300"),
    );
    Ok(response)
}
