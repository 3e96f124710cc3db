//! Each transfer syntax DCMTK writes: DCMTK compresses, DCMTK decompresses,
//! and `decode_frame` must give DCMTK's pixels, frame by frame (byte for
//! byte where the codec is deterministic, within a tolerance for JPEG DCT,
//! whose decoders differ in IDCT and chroma upsampling).

use std::path::Path;

use super::{colour_instance, difference, native_frames, path_str, record, run, sample, tools};
use crate::pixels::{decode_frame, number_of_frames};

const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
const JPEG_LOSSLESS: &str = "1.2.840.10008.1.2.4.57";
const JPEG_LOSSLESS_SV1: &str = "1.2.840.10008.1.2.4.70";
const JPEG_LS: &str = "1.2.840.10008.1.2.4.80";
const JPEG_LS_NEAR: &str = "1.2.840.10008.1.2.4.81";
const RLE: &str = "1.2.840.10008.1.2.5";

#[derive(Clone, Copy)]
enum Expect {
    Exact,
    /// Largest sample difference and mean absolute difference allowed.
    Within(u32, f64),
}

/// `encoder args input encoded` (`COPY`: the input as it is), then
/// `decoder decoder_args encoded decoded`; our frames of `encoded` against
/// DCMTK's of `decoded`.
fn against_dcmtk(
    input: &Path,
    (encoder, encoder_args): (&str, &[&str]),
    transfer_syntax: &str,
    (decoder, decoder_args): (&str, &[&str]),
    expect: Expect,
) {
    let Some([decoder]) = tools([decoder]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let encoded = dir.path().join("encoded.dcm");
    let decoded = dir.path().join("decoded.dcm");
    if encoder == COPY.0 {
        std::fs::copy(input, &encoded).expect("copy");
    } else {
        let Some([encoder]) = tools([encoder]) else {
            return;
        };
        run(
            &encoder,
            &[encoder_args, &[path_str(input), path_str(&encoded)]].concat(),
        );
    }
    run(
        &decoder,
        &[decoder_args, &[path_str(&encoded), path_str(&decoded)]].concat(),
    );
    let record = record(&encoded);
    assert_eq!(
        record.transfer_syntax, transfer_syntax,
        "DCMTK wrote another syntax"
    );
    let theirs = native_frames(&decoded);
    assert_eq!(number_of_frames(&record) as usize, theirs.len());
    let bits = record.attrs.bits_allocated.unwrap_or(8);
    for (i, expected) in theirs.iter().enumerate() {
        let frame = i as u32 + 1;
        let ours = decode_frame(&encoded, &record, frame)
            .unwrap_or_else(|e| panic!("frame {frame} of {transfer_syntax}: {e}"));
        match expect {
            Expect::Exact => assert!(
                &ours == expected,
                "frame {frame} of {transfer_syntax} differs from DCMTK's: {:?}",
                difference(&ours, expected, bits)
            ),
            Expect::Within(max, mean) => {
                let (worst, average) = difference(&ours, expected, bits);
                eprintln!("frame {frame} of {transfer_syntax}: max {worst}, mean {average:.3}");
                assert!(
                    worst <= max && average <= mean,
                    "frame {frame} of {transfer_syntax}: max difference {worst}, mean {average}"
                );
            }
        }
    }
}

const DJPEG: (&str, &[&str]) = ("dcmdjpeg", &["+px"]);
const DJPLS: (&str, &[&str]) = ("dcmdjpls", &["+px"]);
const DRLE: (&str, &[&str]) = ("dcmdrle", &[]);
const TO_EXPLICIT: (&str, &[&str]) = ("dcmconv", &["+te"]);
const COPY: (&str, &[&str]) = ("copy", &[]);

fn ct() -> std::path::PathBuf {
    sample("ct-phantom/CT000011.dcm")
}
fn mr() -> std::path::PathBuf {
    sample("mr-brain/MR000001.dcm")
}
fn xa() -> std::path::PathBuf {
    sample("multiframe/XA000001.dcm")
}

fn with_colour(test: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().expect("tempdir");
    if let Some(colour) = colour_instance(dir.path()) {
        test(&colour);
    }
}

#[test]
fn jpeg_baseline_multiframe_and_colour() {
    let lossy = Expect::Within(4, 0.25);
    against_dcmtk(&xa(), ("dcmcjpeg", &["+eb"]), JPEG_BASELINE, DJPEG, lossy);
    with_colour(|c| against_dcmtk(c, ("dcmcjpeg", &["+eb"]), JPEG_BASELINE, DJPEG, lossy));
    with_colour(|c| {
        against_dcmtk(
            c,
            ("dcmcjpeg", &["+eb", "+s4"]),
            JPEG_BASELINE,
            DJPEG,
            lossy,
        )
    });
}

#[test]
fn jpeg_baseline_written_by_dicom_rs() {
    let us = sample("jpeg/US000001.dcm");
    against_dcmtk(&us, COPY, JPEG_BASELINE, DJPEG, Expect::Within(4, 0.25));
}

#[test]
fn jpeg_extended_8_bit() {
    let lossy = Expect::Within(4, 0.25);
    against_dcmtk(&xa(), ("dcmcjpeg", &["+ee"]), JPEG_EXTENDED, DJPEG, lossy);
}

/// 12-bit extended JPEG (decoded by pixels/jpeg/dct12.rs, IJG's islow
/// IDCT): sample for sample what dcmdjpeg gives, for an MR and a CT that
/// dcmcjpeg compresses and for pydicom's 12-bit files.
#[test]
fn jpeg_extended_12_bit() {
    against_dcmtk(
        &mr(),
        ("dcmcjpeg", &["+ee"]),
        JPEG_EXTENDED,
        DJPEG,
        Expect::Exact,
    );
    against_dcmtk(
        &ct(),
        ("dcmcjpeg", &["+ee", "+q", "50"]),
        JPEG_EXTENDED,
        DJPEG,
        Expect::Exact,
    );
    for name in ["JPGExtended.dcm", "JPEG-lossy.dcm"] {
        if let Some(file) = pydicom_test_file(name) {
            against_dcmtk(&file, COPY, JPEG_EXTENDED, DJPEG, Expect::Exact);
        }
    }
}

/// An RGB JPEG with component IDs 0,1,2 and no JFIF or Adobe marker, and
/// one with an Adobe marker saying "as coded": RGB, not YCbCr (libjpeg's
/// and DCMTK's reading), within a grey level of dcmdjpeg.
#[test]
fn jpeg_rgb_without_colour_transform() {
    for name in [
        "SC_jpeg_no_color_transform.dcm",
        "SC_jpeg_no_color_transform_2.dcm",
    ] {
        if let Some(file) = pydicom_test_file(name) {
            against_dcmtk(&file, COPY, JPEG_BASELINE, DJPEG, Expect::Within(1, 0.1));
        }
    }
}

/// RLE with 32 bits allocated (dicom-rs's adapter stops at 16).
#[test]
fn rle_32_bit() {
    for name in ["SC_rgb_rle_32bit.dcm", "SC_rgb_rle_32bit_2frame.dcm"] {
        if let Some(file) = pydicom_test_file(name) {
            against_dcmtk(&file, COPY, RLE, DRLE, Expect::Exact);
        }
    }
}

/// A file of pydicom's bundled test corpus (in the test venv `make pyenv`
/// builds), or `None` after saying it is missing.
fn pydicom_test_file(name: &str) -> Option<std::path::PathBuf> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|dirs| {
        dirs.filter_map(Result::ok)
            .map(|d| {
                d.path()
                    .join("site-packages/pydicom/data/test_files")
                    .join(name)
            })
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("PUSHGATE_CI").is_none(),
            "{name}: pydicom's test files are missing under PUSHGATE_CI (make pyenv)"
        );
        eprintln!(
            "skipped: {name} not found under {} (make pyenv)",
            lib.display()
        );
    }
    found
}

#[test]
fn jpeg_lossless() {
    for input in [ct(), mr(), xa()] {
        against_dcmtk(
            &input,
            ("dcmcjpeg", &["+el"]),
            JPEG_LOSSLESS,
            DJPEG,
            Expect::Exact,
        );
        against_dcmtk(
            &input,
            ("dcmcjpeg", &["+e1"]),
            JPEG_LOSSLESS_SV1,
            DJPEG,
            Expect::Exact,
        );
    }
    with_colour(|c| {
        against_dcmtk(
            c,
            ("dcmcjpeg", &["+e1"]),
            JPEG_LOSSLESS_SV1,
            DJPEG,
            Expect::Exact,
        )
    });
}

/// Several fragments per frame and no offset table: the frames are found
/// by the JPEG SOI marker that starts each.
#[test]
fn jpeg_lossless_fragmented_without_offset_table() {
    let args: &[&str] = &["+e1", "+fs", "1", "-ot"];
    against_dcmtk(
        &xa(),
        ("dcmcjpeg", args),
        JPEG_LOSSLESS_SV1,
        DJPEG,
        Expect::Exact,
    );
}

#[test]
fn jpeg_lossless_fragmented_with_offset_table() {
    let args: &[&str] = &["+e1", "+fs", "1"];
    against_dcmtk(
        &xa(),
        ("dcmcjpeg", args),
        JPEG_LOSSLESS_SV1,
        DJPEG,
        Expect::Exact,
    );
}

#[test]
fn jpeg_ls_lossless() {
    for input in [ct(), mr(), xa()] {
        against_dcmtk(&input, ("dcmcjpls", &[]), JPEG_LS, DJPLS, Expect::Exact);
    }
    for interleave in ["+il", "+is", "+in"] {
        with_colour(|c| {
            against_dcmtk(
                c,
                ("dcmcjpls", &[interleave]),
                JPEG_LS,
                DJPLS,
                Expect::Exact,
            )
        });
    }
}

/// Near-lossless decoding is exact arithmetic: both decoders must agree.
#[test]
fn jpeg_ls_near_lossless() {
    // DCMTK refuses near-lossless for signed pixels (the CT)
    for input in [mr(), xa()] {
        against_dcmtk(
            &input,
            ("dcmcjpls", &["+en"]),
            JPEG_LS_NEAR,
            DJPLS,
            Expect::Exact,
        );
    }
    with_colour(|c| {
        against_dcmtk(
            c,
            ("dcmcjpls", &["+en"]),
            JPEG_LS_NEAR,
            DJPLS,
            Expect::Exact,
        )
    });
}

#[test]
fn rle_lossless() {
    for input in [ct(), mr(), xa()] {
        against_dcmtk(&input, ("dcmcrle", &[]), RLE, DRLE, Expect::Exact);
    }
    with_colour(|c| against_dcmtk(c, ("dcmcrle", &[]), RLE, DRLE, Expect::Exact));
    against_dcmtk(&sample("rle/CT000001.dcm"), COPY, RLE, DRLE, Expect::Exact);
}

#[test]
fn native_syntaxes_are_reencoded() {
    let syntaxes = [
        ("+tb", "1.2.840.10008.1.2.2"),
        ("+ti", "1.2.840.10008.1.2"),
        ("+td", "1.2.840.10008.1.2.1.99"),
        ("+te", "1.2.840.10008.1.2.1"),
    ];
    for (option, uid) in syntaxes {
        for input in [ct(), mr(), xa()] {
            against_dcmtk(
                &input,
                ("dcmconv", &[option]),
                uid,
                TO_EXPLICIT,
                Expect::Exact,
            );
        }
        with_colour(|c| against_dcmtk(c, ("dcmconv", &[option]), uid, TO_EXPLICIT, Expect::Exact));
    }
}
