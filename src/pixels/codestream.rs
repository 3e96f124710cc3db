//! What a frame's codestream says about itself, read before a decoder
//! allocates for it: a corrupt or hostile frame that claims 65535×65535
//! samples must be refused, not decoded into an allocation failure.

use super::PixelError;
use super::header::ImageHeader;
use super::jpeg::markers::{self, be16, corrupt};
use super::syntax::trim;

/// Dimensions and component count a codestream declares.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Declared {
    pub width: u32,
    pub height: u32,
    pub components: u16,
    /// JPEG-LS: components coded in separate scans (interleave mode none).
    pub separate_scans: bool,
}

/// Checks the frame's codestream against Rows, Columns and Samples per
/// Pixel, where the transfer syntax has a header to read (JPEG, JPEG-LS,
/// JPEG 2000 codestreams).
pub(crate) fn check(
    transfer_syntax: &str,
    data: &[u8],
    header: &ImageHeader,
) -> Result<Option<Declared>, PixelError> {
    let declared = match family(transfer_syntax) {
        Family::Jpeg => Some(jpeg(data)?),
        Family::Jpeg2000 => j2k(data)?,
        Family::Other => None,
    };
    if let Some(d) = &declared {
        let expected = (
            u32::from(header.columns),
            u32::from(header.rows),
            header.samples_per_pixel,
        );
        if (d.width, d.height, d.components) != expected {
            return Err(PixelError::Decode(format!(
                "the codestream holds {}x{} with {} components; the data set says {}x{} with {}",
                d.width, d.height, d.components, expected.0, expected.1, expected.2
            )));
        }
    }
    Ok(declared)
}

enum Family {
    Jpeg,
    Jpeg2000,
    Other,
}

fn family(transfer_syntax: &str) -> Family {
    match trim(transfer_syntax).strip_prefix("1.2.840.10008.1.2.4.") {
        Some("50" | "51" | "57" | "70" | "80" | "81") => Family::Jpeg,
        Some("90" | "91" | "92" | "93" | "201" | "202" | "203") => Family::Jpeg2000,
        _ => Family::Other,
    }
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *data.get(at)?,
        *data.get(at + 1)?,
        *data.get(at + 2)?,
        *data.get(at + 3)?,
    ]))
}

/// JPEG and JPEG-LS: the frame header before the first scan.
fn jpeg(data: &[u8]) -> Result<Declared, PixelError> {
    let m = markers::read(data)?;
    Ok(Declared {
        width: u32::from(m.width),
        height: u32::from(m.height),
        components: m.components.len() as u16,
        separate_scans: m.first_scan_components == 1 && m.components.len() > 1,
    })
}

/// JPEG 2000 codestream (ISO 15444-1 A.5.1): SIZ follows SOC. A JP2 file
/// (boxes) is left to the decoder.
fn j2k(data: &[u8]) -> Result<Option<Declared>, PixelError> {
    if be16(data, 0) != Some(0xFF4F) {
        return Ok(None);
    }
    if be16(data, 2) != Some(0xFF51) {
        return Err(corrupt("SIZ does not follow SOC"));
    }
    // SIZ: Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz XTOsiz YTOsiz Csiz
    let field = |at| be32(data, at).ok_or_else(|| corrupt("short SIZ"));
    let (x, y, x0, y0) = (field(8)?, field(12)?, field(16)?, field(20)?);
    let components = be16(data, 40).ok_or_else(|| corrupt("short SIZ"))?;
    if x0 > x || y0 > y {
        return Err(corrupt("image offset beyond its size"));
    }
    Ok(Some(Declared {
        width: x - x0,
        height: y - y0,
        components,
        separate_scans: false,
    }))
}
