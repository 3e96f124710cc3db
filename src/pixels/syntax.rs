//! What a transfer syntax means for its pixel data.

use dicom_encoding::adapters::PixelDataReader;
use dicom_encoding::transfer_syntax::{Codec, TransferSyntax, TransferSyntaxIndex};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::PixelError;

pub(crate) const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
pub(crate) const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
pub(crate) const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.99";
pub(crate) const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// Transfer syntax UIDs arrive padded to even length.
pub(crate) fn trim(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}

/// The media type of a stored compressed frame in this transfer syntax
/// (PS3.18 Table 8.7.3-5); `None` for native (uncompressed) syntaxes, whose
/// frames are `application/octet-stream`, and for syntaxes without one.
pub fn frame_media_type(transfer_syntax: &str) -> Option<&'static str> {
    Some(match trim(transfer_syntax) {
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.57"
        | "1.2.840.10008.1.2.4.70" => "image/jpeg",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/jp2",
        "1.2.840.10008.1.2.4.92" | "1.2.840.10008.1.2.4.93" => "image/jpx",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => {
            "image/jphc"
        }
        "1.2.840.10008.1.2.4.110" | "1.2.840.10008.1.2.4.111" | "1.2.840.10008.1.2.4.112" => {
            "image/jxl"
        }
        RLE_LOSSLESS => "image/dicom-rle",
        _ => return None,
    })
}

/// Whether the pixel data is stored native (one value, no fragments).
pub(crate) fn is_native(transfer_syntax: &str) -> bool {
    matches!(
        trim(transfer_syntax),
        IMPLICIT_VR_LITTLE_ENDIAN
            | super::EXPLICIT_VR_LITTLE_ENDIAN
            | EXPLICIT_VR_BIG_ENDIAN
            | DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
    )
}

/// Whether frames in this transfer syntax can be decoded to native pixels:
/// native syntaxes (re-encoding only) and every encapsulated syntax that
/// has a decoder built in.
pub fn can_decode(transfer_syntax: &str) -> bool {
    is_native(transfer_syntax) || decoder(transfer_syntax).is_ok()
}

pub(crate) fn registered(transfer_syntax: &str) -> Result<&'static TransferSyntax, PixelError> {
    TransferSyntaxRegistry
        .get(trim(transfer_syntax))
        .filter(|ts| !ts.is_unsupported())
        .ok_or_else(|| {
            PixelError::UnsupportedTransferSyntax(format!(
                "{} is not a transfer syntax pushgate knows",
                trim(transfer_syntax)
            ))
        })
}

/// The pixel data decoder of an encapsulated transfer syntax.
pub(crate) fn decoder(
    transfer_syntax: &str,
) -> Result<&'static (dyn PixelDataReader + Send + Sync), PixelError> {
    let ts = TransferSyntaxRegistry
        .get(trim(transfer_syntax))
        .ok_or_else(|| {
            PixelError::UnsupportedTransferSyntax(format!(
                "{} is not a transfer syntax pushgate knows",
                trim(transfer_syntax)
            ))
        })?;
    match ts.codec() {
        Codec::EncapsulatedPixelData(Some(reader), _) => Ok(&**reader),
        _ => Err(PixelError::UnsupportedTransferSyntax(format!(
            "no decoder for {} ({})",
            ts.name(),
            ts.uid()
        ))),
    }
}

/// Transfer syntaxes whose codec is always lossy: decompressing them must
/// leave Lossy Image Compression at "01" (PS3.3 C.7.6.1.1.5), with its
/// method.
pub(crate) fn lossy_method(transfer_syntax: &str) -> Option<&'static str> {
    match trim(transfer_syntax) {
        "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51" => Some("ISO_10918_1"),
        _ => None,
    }
}

/// Whether the decoder converts YCbCr to RGB itself (JPEG DCT processes:
/// the decoder applies the JFIF colour transform), as opposed to handing
/// back the samples as coded.
pub(crate) fn decoder_converts_ybr(transfer_syntax: &str) -> bool {
    matches!(
        trim(transfer_syntax),
        "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51"
    )
}

/// Encapsulated syntaxes pushgate decodes with its own code rather than
/// dicom-rs's adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnCodec {
    /// JPEG DCT and lossless: 12-bit DCT and the colour transform decision
    /// (see `jpeg`).
    Jpeg,
    /// RLE of any whole-byte Bits Allocated (see `rle`).
    Rle,
}

pub(crate) fn own_codec(transfer_syntax: &str) -> Option<OwnCodec> {
    match trim(transfer_syntax) {
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.57"
        | "1.2.840.10008.1.2.4.70" => Some(OwnCodec::Jpeg),
        RLE_LOSSLESS => Some(OwnCodec::Rle),
        _ => None,
    }
}
