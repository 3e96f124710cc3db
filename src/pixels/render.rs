//! 8-bit renderings of one frame (WADO-RS `/rendered`, `/thumbnail`).

use std::io::Cursor;
use std::path::Path;

use dicom_core::value::Value;
use dicom_core::{DataElement, DicomValue, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_pixeldata::image::codecs::jpeg::JpegEncoder;
use dicom_pixeldata::image::codecs::png::PngEncoder;
use dicom_pixeldata::image::imageops::FilterType;
use dicom_pixeldata::image::{DynamicImage, ImageEncoder};
use dicom_pixeldata::{ConvertOptions, PixelDecoder, VoiLutFunction, VoiLutOption, WindowLevel};
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;

use super::decode::{FrameSource, photometric_after_decoding};
use super::header::ImageHeader;
use super::{PixelError, check_frame};
use crate::store::{InstanceRecord, PixelLayout};

#[derive(Clone, Debug, PartialEq)]
pub struct RenderOptions {
    /// Numbered from 1.
    pub frame: u32,
    /// The VOI window to apply; `None`: the data set's own.
    pub window: Option<Window>,
    pub format: ImageFormat,
    /// Scale down (never up) to fit this box (width, height), keeping the
    /// aspect ratio: thumbnails.
    pub fit: Option<(u32, u32)>,
}

/// A VOI window applied to modality values (after rescale), as DICOMweb's
/// `window=center,width,function` (PS3.18 8.3.5.1.3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub center: f64,
    pub width: f64,
    pub function: VoiFunction,
}

/// VOI LUT Function (0028,1056).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VoiFunction {
    #[default]
    Linear,
    LinearExact,
    Sigmoid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// `image/jpeg`; quality 1–100.
    Jpeg { quality: u8 },
    /// `image/png`.
    Png,
}

impl ImageFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg { .. } => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }
}

impl Window {
    /// Parses the value of DICOMweb's `window` query parameter:
    /// `center,width,function` with function `linear`, `linear-exact` or
    /// `sigmoid` (all three required). Width must be positive (at least 1
    /// for `linear`, as PS3.3 C.11.2.1.2.1 requires).
    pub fn from_query(value: &str) -> Result<Window, String> {
        let parts: Vec<&str> = value.split(',').map(str::trim).collect();
        let [center, width, function] = parts[..] else {
            return Err(format!("window {value:?} is not center,width,function"));
        };
        let number = |s: &str, what: &str| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("window {what} {s:?} is not a number"))
        };
        let center = number(center, "center")?;
        let width = number(width, "width")?;
        let function = match function.to_ascii_lowercase().as_str() {
            "linear" => VoiFunction::Linear,
            "linear-exact" => VoiFunction::LinearExact,
            "sigmoid" => VoiFunction::Sigmoid,
            other => {
                return Err(format!(
                    "window function {other:?} is not linear, linear-exact or sigmoid"
                ));
            }
        };
        let minimum = if function == VoiFunction::Linear {
            1.0
        } else {
            f64::MIN_POSITIVE
        };
        if width < minimum {
            return Err(format!("window width {width} is too small"));
        }
        Ok(Window {
            center,
            width,
            function,
        })
    }
}

/// One frame rendered to an 8-bit JPEG or PNG: Modality LUT (rescale), then
/// the VOI transformation: the requested window, else the data set's first
/// VOI LUT or window (with its VOI LUT Function), else the frame's minimum
/// to maximum; MONOCHROME1 inverted so that it looks as intended; colour as
/// RGB (YBR converted). Pixel aspect ratio is not corrected.
pub fn render(
    path: &Path,
    record: &InstanceRecord,
    options: &RenderOptions,
) -> Result<Vec<u8>, PixelError> {
    if record.layout.pixel.is_none() {
        return Err(PixelError::NoPixelData);
    }
    let header = ImageHeader::read(path)?;
    check_frame(options.frame, header.frames)?;
    if header.photometric_interpretation == "PALETTE COLOR" {
        return Err(PixelError::InvalidImage(
            "rendering PALETTE COLOR images is not supported".into(),
        ));
    }
    let pixels = FrameSource::open(path, record, &header)?.decode(options.frame)?;
    let encapsulated = matches!(record.layout.pixel, Some(PixelLayout::Encapsulated { .. }));
    let object = single_frame_object(&header, record, options.frame, pixels, encapsulated);
    let decoded = object
        .decode_pixel_data()
        .map_err(|e| PixelError::InvalidImage(crate::base::error_chain(&e)))?;
    let voi = match options.window {
        Some(w) => VoiLutOption::CustomWithFunction(
            WindowLevel {
                center: w.center,
                width: w.width,
            },
            match w.function {
                VoiFunction::Linear => VoiLutFunction::Linear,
                VoiFunction::LinearExact => VoiLutFunction::LinearExact,
                VoiFunction::Sigmoid => VoiLutFunction::Sigmoid,
            },
        ),
        None => VoiLutOption::First,
    };
    let convert = ConvertOptions::new().with_voi_lut(voi).force_8bit();
    let mut image = decoded
        .to_dynamic_image_with_options(0, &convert)
        .map_err(|e| PixelError::InvalidImage(crate::base::error_chain(&e)))?;
    if let Some((width, height)) = options.fit
        && (image.width() > width || image.height() > height)
    {
        image = image.resize(width.max(1), height.max(1), FilterType::Triangle);
    }
    encode(&image, options.format)
}

/// The frame as a native single-frame object, with the attributes that
/// describe it after decoding; the per-frame functional group of that
/// frame alone, so that its rescale and window apply.
fn single_frame_object(
    header: &ImageHeader,
    record: &InstanceRecord,
    frame: u32,
    pixels: Vec<u8>,
    encapsulated: bool,
) -> dicom_object::DefaultDicomObject {
    let mut object = header.object.clone();
    object
        .meta_mut()
        .set_transfer_syntax(&EXPLICIT_VR_LITTLE_ENDIAN.erased());
    object.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("1"),
    ));
    if encapsulated {
        let pi = photometric_after_decoding(header, &record.transfer_syntax);
        object.put(DataElement::new(
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            PrimitiveValue::from(pi),
        ));
        if header.samples_per_pixel > 1 {
            object.put(DataElement::new(
                tags::PLANAR_CONFIGURATION,
                VR::US,
                PrimitiveValue::from(0_u16),
            ));
        }
    }
    if let Some(per_frame) = object.get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE) {
        let item = per_frame
            .items()
            .and_then(|items| items.get(frame as usize - 1))
            .cloned();
        if let Some(item) = item {
            object.put(DataElement::new(
                tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
                VR::SQ,
                DicomValue::new_sequence(vec![item], dicom_core::Length::UNDEFINED),
            ));
        }
    }
    let vr = if header.bits_allocated > 8 {
        VR::OW
    } else {
        VR::OB
    };
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        vr,
        Value::Primitive(PrimitiveValue::U8(pixels.into())),
    ));
    object
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>, PixelError> {
    let image = match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image.clone(),
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLuma16(_) => {
            DynamicImage::ImageLuma8(image.to_luma8())
        }
        _ => DynamicImage::ImageRgb8(image.to_rgb8()),
    };
    let mut bytes = Cursor::new(Vec::new());
    let (width, height, color) = (image.width(), image.height(), image.color().into());
    let result = match format {
        ImageFormat::Jpeg { quality } => JpegEncoder::new_with_quality(
            &mut bytes,
            quality.clamp(1, 100),
        )
        .write_image(image.as_bytes(), width, height, color),
        ImageFormat::Png => {
            PngEncoder::new(&mut bytes).write_image(image.as_bytes(), width, height, color)
        }
    };
    result.map_err(|e| PixelError::Encode(e.to_string()))?;
    Ok(bytes.into_inner())
}
