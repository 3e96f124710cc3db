//! JPEG 2000 and HTJ2K: DCMTK cannot write them, so OpenJPEG's
//! `opj_compress` and OpenJPH's `ojph_compress` encode frames that are
//! wrapped into DICOM here; decoded pixels must equal the originals
//! (lossless) or the encoder's own decoder's (lossy).

use std::path::{Path, PathBuf};

use dicom_core::value::PixelFragmentSequence;
use dicom_core::{DataElement, DicomValue, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;

use super::{colour_instance, difference, native_frames, path_str, record, run, sample, tools};
use crate::pixels::decode_frame;

const J2K_LOSSLESS: &str = "1.2.840.10008.1.2.4.90";
const J2K: &str = "1.2.840.10008.1.2.4.91";
const HTJ2K_LOSSLESS: &str = "1.2.840.10008.1.2.4.201";
const HTJ2K: &str = "1.2.840.10008.1.2.4.203";

/// `template`'s attributes with `codestreams` as its encapsulated frames
/// (with a Basic Offset Table), in `transfer_syntax`.
fn encapsulate(
    template: &Path,
    codestreams: Vec<Vec<u8>>,
    transfer_syntax: &str,
    photometric: Option<&str>,
    out: &Path,
) {
    let mut object = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(template)
        .expect("template");
    let mut offsets = Vec::new();
    let mut at = 0u32;
    let fragments: Vec<Vec<u8>> = codestreams
        .into_iter()
        .map(|mut c| {
            if c.len() % 2 == 1 {
                c.push(0);
            }
            offsets.push(at);
            at += c.len() as u32 + 8;
            c
        })
        .collect();
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        DicomValue::PixelSequence(PixelFragmentSequence::new(offsets, fragments)),
    ));
    if let Some(pi) = photometric {
        object.put(DataElement::new(
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            PrimitiveValue::from(pi),
        ));
    }
    object.meta_mut().transfer_syntax = transfer_syntax.to_string();
    object.meta_mut().update_information_group_length();
    object.write_to_file(out).expect("write");
}

struct Image {
    width: usize,
    height: usize,
    components: usize,
    bits: usize,
    signed: bool,
}

/// Writes a frame in a format the encoder reads: PGM/PPM for 8 bits,
/// little-endian raw otherwise.
fn raw_input(dir: &Path, frame: &[u8], image: &Image, opj: bool) -> PathBuf {
    if image.bits == 8 {
        let magic = if image.components == 3 { "P6" } else { "P5" };
        let ext = if image.components == 3 { "ppm" } else { "pgm" };
        let path = dir.join(format!("frame.{ext}"));
        let mut bytes = format!("{magic}\n{} {}\n255\n", image.width, image.height).into_bytes();
        bytes.extend_from_slice(frame);
        std::fs::write(&path, bytes).expect("write");
        path
    } else {
        let path = dir.join(if opj { "frame.rawl" } else { "frame.yuv" });
        std::fs::write(&path, frame).expect("write");
        path
    }
}

fn opj_encode(
    opj_compress: &Path,
    dir: &Path,
    frame: &[u8],
    image: &Image,
    extra: &[&str],
) -> Vec<u8> {
    let input = raw_input(dir, frame, image, true);
    let output = dir.join("frame.j2k");
    let format = format!(
        "{},{},{},{},{}",
        image.width,
        image.height,
        image.components,
        image.bits,
        if image.signed { "s" } else { "u" }
    );
    let mut args = vec!["-i", path_str(&input), "-o", path_str(&output)];
    if image.bits != 8 {
        args.extend(["-F", &format]);
    }
    args.extend(extra);
    run(opj_compress, &args);
    std::fs::read(output).expect("codestream")
}

fn ojph_encode(
    ojph_compress: &Path,
    dir: &Path,
    frame: &[u8],
    image: &Image,
    reversible: bool,
) -> Vec<u8> {
    let input = raw_input(dir, frame, image, false);
    let output = dir.join("frame.j2c");
    let dims = format!("{{{},{}}}", image.width, image.height);
    let components = image.components.to_string();
    let bits = image.bits.to_string();
    let signed = image.signed.to_string();
    let mut args = vec![
        "-i",
        path_str(&input),
        "-o",
        path_str(&output),
        "-reversible",
        if reversible { "true" } else { "false" },
    ];
    if image.bits != 8 {
        args.extend([
            "-dims",
            &dims,
            "-num_comps",
            &components,
            "-bit_depth",
            &bits,
            "-signed",
            &signed,
            "-downsamp",
            "{1,1}",
        ]);
    } else if !reversible {
        args.extend(["-qstep", "0.01"]);
    }
    run(ojph_compress, &args);
    std::fs::read(output).expect("codestream")
}

const CT: Image = Image {
    width: 256,
    height: 256,
    components: 1,
    bits: 16,
    signed: true,
};

fn assert_decodes_to(path: &Path, expected: &[Vec<u8>], bits: u16, tolerance: u32) {
    let record = record(path);
    for (i, frame) in expected.iter().enumerate() {
        let ours = decode_frame(path, &record, i as u32 + 1).expect("decode");
        let (max, mean) = difference(&ours, frame, bits);
        assert!(
            max <= tolerance,
            "frame {} of {}: max difference {max}, mean {mean}",
            i + 1,
            record.transfer_syntax
        );
    }
}

#[test]
fn jpeg2000_lossless_signed_16_bit_and_multiframe() {
    let Some([opj]) = tools(["opj_compress"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let ct = sample("ct-phantom/CT000011.dcm");
    let original = native_frames(&ct);
    let codestream = opj_encode(&opj, dir.path(), &original[0], &CT, &[]);
    let out = dir.path().join("j2k.dcm");
    encapsulate(&ct, vec![codestream], J2K_LOSSLESS, None, &out);
    assert_decodes_to(&out, &original, 16, 0);

    let xa = sample("multiframe/XA000001.dcm");
    let frames = native_frames(&xa);
    let image = Image {
        width: 256,
        height: 256,
        components: 1,
        bits: 8,
        signed: false,
    };
    let codestreams = frames
        .iter()
        .map(|f| opj_encode(&opj, dir.path(), f, &image, &[]))
        .collect();
    let out = dir.path().join("xa-j2k.dcm");
    encapsulate(&xa, codestreams, J2K_LOSSLESS, None, &out);
    assert_decodes_to(&out, &frames, 8, 0);
}

/// Irreversible 9/7: our decoder must give what OpenJPEG's own gives.
#[test]
fn jpeg2000_lossy_equals_opj_decompress() {
    let Some([opj, opj_decompress]) = tools(["opj_compress", "opj_decompress"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let ct = sample("ct-phantom/CT000011.dcm");
    let original = native_frames(&ct);
    let codestream = opj_encode(&opj, dir.path(), &original[0], &CT, &["-I", "-r", "20"]);
    std::fs::write(dir.path().join("lossy.j2k"), &codestream).expect("write");
    let reference = dir.path().join("reference.rawl");
    run(
        &opj_decompress,
        &[
            "-i",
            path_str(&dir.path().join("lossy.j2k")),
            "-o",
            path_str(&reference),
        ],
    );
    let reference = std::fs::read(reference).expect("reference");
    let out = dir.path().join("j2k.dcm");
    encapsulate(&ct, vec![codestream], J2K, None, &out);
    assert_decodes_to(&out, &[reference], 16, 0);
    // and it really is lossy
    let decoded = decode_frame(&out, &record(&out), 1).expect("decode");
    assert_ne!(decoded, original[0]);
}

/// Colour with the reversible component transform: YBR_RCT decodes to RGB.
#[test]
fn jpeg2000_and_htj2k_colour() {
    let Some([opj, ojph]) = tools(["opj_compress", "ojph_compress"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(colour) = colour_instance(dir.path()) else {
        return;
    };
    let original = native_frames(&colour);
    let image = Image {
        width: 96,
        height: 64,
        components: 3,
        bits: 8,
        signed: false,
    };
    let j2k = opj_encode(&opj, dir.path(), &original[0], &image, &["-mct", "1"]);
    let out = dir.path().join("colour-j2k.dcm");
    encapsulate(&colour, vec![j2k], J2K_LOSSLESS, Some("YBR_RCT"), &out);
    assert_decodes_to(&out, &original, 8, 0);

    let htj2k = ojph_encode(&ojph, dir.path(), &original[0], &image, true);
    let out = dir.path().join("colour-htj2k.dcm");
    encapsulate(&colour, vec![htj2k], HTJ2K_LOSSLESS, Some("YBR_RCT"), &out);
    assert_decodes_to(&out, &original, 8, 0);
}

#[test]
fn htj2k_lossless_unsigned_12_bit() {
    let Some([ojph]) = tools(["ojph_compress"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mr = sample("mr-brain/MR000001.dcm");
    let original = native_frames(&mr);
    let image = Image {
        width: 256,
        height: 256,
        components: 1,
        bits: 12,
        signed: false,
    };
    let codestream = ojph_encode(&ojph, dir.path(), &original[0], &image, true);
    let out = dir.path().join("htj2k.dcm");
    encapsulate(&mr, vec![codestream], HTJ2K_LOSSLESS, None, &out);
    assert_decodes_to(&out, &original, 16, 0);
}

/// Signed samples: OpenJPH 0.9.0 (Debian 12) round-trips its own stream,
/// but OpenJPEG's C decoder (opj_decompress 2.5.0) decodes it differently
/// (negative values come out clipped). Ours is a port of OpenJPEG and must
/// at least agree with it; which of the two is right is open (see the
/// module's report).
#[test]
fn htj2k_signed_16_bit_agrees_with_openjpeg() {
    let Some([ojph, opj_decompress]) = tools(["ojph_compress", "opj_decompress"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let ct = sample("ct-phantom/CT000011.dcm");
    let original = native_frames(&ct);
    let codestream = ojph_encode(&ojph, dir.path(), &original[0], &CT, true);
    let j2c = dir.path().join("signed.j2c");
    std::fs::write(&j2c, &codestream).expect("write");
    let reference = dir.path().join("reference.rawl");
    run(
        &opj_decompress,
        &["-i", path_str(&j2c), "-o", path_str(&reference)],
    );
    let reference = std::fs::read(reference).expect("reference");
    let out = dir.path().join("htj2k.dcm");
    encapsulate(&ct, vec![codestream], HTJ2K_LOSSLESS, None, &out);
    assert_decodes_to(&out, &[reference], 16, 0);
}

/// Irreversible HTJ2K against OpenJPH's own decoder.
#[test]
fn htj2k_lossy_equals_ojph_expand() {
    let Some([ojph, ojph_expand]) = tools(["ojph_compress", "ojph_expand"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let xa = sample("multiframe/XA000001.dcm");
    let frames = native_frames(&xa);
    let image = Image {
        width: 256,
        height: 256,
        components: 1,
        bits: 8,
        signed: false,
    };
    let codestream = ojph_encode(&ojph, dir.path(), &frames[0], &image, false);
    let j2c = dir.path().join("lossy.j2c");
    std::fs::write(&j2c, &codestream).expect("write");
    let reference = dir.path().join("reference.pgm");
    run(
        &ojph_expand,
        &["-i", path_str(&j2c), "-o", path_str(&reference)],
    );
    let pgm = std::fs::read(reference).expect("reference");
    let pixels = pgm[pgm.len() - 256 * 256..].to_vec();
    let out = dir.path().join("htj2k.dcm");
    encapsulate(&xa, vec![codestream], HTJ2K, None, &out);
    let mut one_frame = OpenFileOptions::new().open_file(&out).expect("read");
    one_frame.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("1"),
    ));
    one_frame.write_to_file(&out).expect("write");
    assert_decodes_to(&out, &[pixels], 8, 1);
    assert_ne!(
        decode_frame(&out, &record(&out), 1).expect("decode"),
        frames[0]
    );
}
