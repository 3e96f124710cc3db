//! The marker segments of a JPEG (ISO 10918-1 B.2) or JPEG-LS (ISO 14495-1
//! C.2) codestream up to its first scan: what the frame declares, and the
//! application markers that say how its colour was coded.

use crate::pixels::PixelError;

/// One component of the frame header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Component {
    pub id: u8,
    pub h: u8,
    pub v: u8,
    pub quant_table: u8,
}

/// What the codestream says about itself before its first scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Markers {
    /// The SOFn marker's second byte (0xC0..0xCF, or 0xF7 for JPEG-LS).
    pub sof: u8,
    pub precision: u8,
    pub width: u16,
    pub height: u16,
    pub components: Vec<Component>,
    /// Components in the first scan.
    pub first_scan_components: u8,
    /// An APP0 "JFIF" segment: the samples are YCbCr (or grey).
    pub jfif: bool,
    /// The transform flag of an APP14 "Adobe" segment (0: as coded, 1:
    /// YCbCr, 2: YCCK).
    pub adobe_transform: Option<u8>,
}

pub(crate) fn corrupt(what: &str) -> PixelError {
    PixelError::Decode(format!("corrupt codestream: {what}"))
}

pub(crate) fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

/// Reads the marker segments from SOI to the first SOS.
pub(crate) fn read(data: &[u8]) -> Result<Markers, PixelError> {
    if be16(data, 0) != Some(0xFFD8) {
        return Err(corrupt("no SOI marker"));
    }
    let mut at = 2;
    let mut frame: Option<Markers> = None;
    let mut jfif = false;
    let mut adobe_transform = None;
    loop {
        // fill bytes (0xFF) may precede a marker
        while data.get(at) == Some(&0xFF) && data.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if data.get(at) != Some(&0xFF) {
            return Err(corrupt("marker expected"));
        }
        let marker = *data.get(at + 1).ok_or_else(|| corrupt("ends before SOS"))?;
        let length = usize::from(be16(data, at + 2).ok_or_else(|| corrupt("ends in a marker"))?);
        if length < 2 {
            return Err(corrupt("marker segment length"));
        }
        let segment = data
            .get(at + 4..(at + 2 + length).min(data.len()))
            .unwrap_or_default();
        let is_sof = matches!(marker, 0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC))
            || marker == 0xF7;
        match marker {
            _ if is_sof => frame = Some(frame_header(marker, segment, jfif, adobe_transform)?),
            0xE0 if segment.starts_with(b"JFIF\0") => jfif = true,
            // "Adobe", version (2), flags0 (2), flags1 (2), transform (1)
            0xEE if segment.len() >= 12 && segment.starts_with(b"Adobe") => {
                adobe_transform = Some(segment[11]);
            }
            0xDA => {
                let mut frame = frame.ok_or_else(|| corrupt("scan before frame header"))?;
                frame.first_scan_components = *segment
                    .first()
                    .ok_or_else(|| corrupt("short scan header"))?;
                frame.jfif = jfif;
                frame.adobe_transform = adobe_transform;
                return Ok(frame);
            }
            _ => {}
        }
        at += 2 + length;
    }
}

fn frame_header(
    marker: u8,
    segment: &[u8],
    jfif: bool,
    adobe_transform: Option<u8>,
) -> Result<Markers, PixelError> {
    let (Some(&precision), Some(height), Some(width), Some(&count)) = (
        segment.first(),
        be16(segment, 1),
        be16(segment, 3),
        segment.get(5),
    ) else {
        return Err(corrupt("short frame header"));
    };
    let components = (0..usize::from(count))
        .map(|i| {
            let c = segment
                .get(6 + 3 * i..9 + 3 * i)
                .ok_or_else(|| corrupt("short frame header"))?;
            Ok(Component {
                id: c[0],
                h: c[1] >> 4,
                v: c[1] & 0x0F,
                quant_table: c[2],
            })
        })
        .collect::<Result<Vec<_>, PixelError>>()?;
    Ok(Markers {
        sof: marker,
        precision,
        width,
        height,
        components,
        first_scan_components: 0,
        jfif,
        adobe_transform,
    })
}

impl Markers {
    /// Whether the decoder turns YCbCr into RGB, decided as libjpeg does
    /// (jdapimin.c): an Adobe marker's transform flag, else JFIF means
    /// YCbCr, else component IDs 'R','G','B' mean RGB; and, for DICOM, a
    /// Photometric Interpretation of RGB without a JFIF or Adobe marker
    /// says the samples were coded as RGB (what DCMTK goes by). Otherwise
    /// three components are YCbCr, libjpeg's default.
    pub fn ycbcr_to_rgb(&self, photometric_interpretation: &str) -> bool {
        if self.components.len() != 3 {
            return false;
        }
        if let Some(transform) = self.adobe_transform {
            return transform != 0;
        }
        if self.jfif {
            return true;
        }
        let ids: Vec<u8> = self.components.iter().map(|c| c.id).collect();
        if ids == b"RGB" {
            return false;
        }
        photometric_interpretation != "RGB"
    }

    /// Sequential DCT with Huffman coding (baseline or extended).
    pub fn is_sequential_huffman(&self) -> bool {
        matches!(self.sof, 0xC0 | 0xC1)
    }

    /// Whether pushgate has a decoder for this coding process and
    /// precision: jpeg-decoder for 8-bit DCT (sequential and progressive)
    /// and lossless (process 14), its own for 12-bit sequential DCT;
    /// CharLS for JPEG-LS. Arithmetic coding and the hierarchical
    /// processes have none.
    pub fn unsupported(&self) -> Option<String> {
        let supported = match self.sof {
            0xC0 | 0xC1 => matches!(self.precision, 8 | 12),
            0xC2 => self.precision == 8,
            0xC3 => (2..=16).contains(&self.precision),
            0xF7 => true,
            _ => false,
        };
        (!supported).then(|| {
            let process = match self.sof {
                0xC0 => "baseline DCT",
                0xC1 => "extended sequential DCT",
                0xC2 => "progressive DCT",
                0xC3 => "lossless",
                0xC5..=0xC7 => "hierarchical",
                0xC9..=0xCB | 0xCD..=0xCF => "arithmetic-coded",
                _ => "unknown",
            };
            format!(
                "no decoder for {process} JPEG (SOF{}) with {}-bit samples",
                self.sof & 0x0F,
                self.precision
            )
        })
    }
}
