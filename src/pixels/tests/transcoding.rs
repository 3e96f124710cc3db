//! `write_explicit_le` against DCMTK: its output parses (dcmdump, dcmftest,
//! dcmconv), its pixels equal DCMTK's decompression, and every attribute
//! outside the pixel module is as it was.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{
    colour_instance, difference, native_frames, path_str, record, run, run_output, sample, tools,
};
use crate::pixels::{EXPLICIT_VR_LITTLE_ENDIAN, write_explicit_le};

/// Attributes decompression may change (PS3.5 8.2, PS3.3 C.7.6.3.1.2 and
/// C.7.6.1.1.5), and the pixel data itself.
const CHANGES: [&str; 7] = [
    "(0028,0004)",
    "(0028,0006)",
    "(0028,2110)",
    "(0028,2114)",
    "(7fe0,0001)",
    "(7fe0,0002)",
    "(7fe0,0010)",
];

/// dcmdump's data set lines, without the meta group, lengths, and the
/// delimiters that only say how lengths were encoded.
fn attributes(dcmdump: &Path, file: &Path) -> Vec<String> {
    let text = run_output(dcmdump, &["+L", path_str(file)]);
    let data_set = text.split("# Dicom-Data-Set").nth(1).unwrap_or("");
    data_set
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter(|l| !l.contains("Delimitation") && !l.trim_start().starts_with("(fffe,e000) pi"))
        .filter(|l| !CHANGES.iter().any(|tag| l.trim_start().starts_with(tag)))
        .map(|l| {
            let value = l.rsplit_once(" #").map_or(l, |(value, _)| value);
            value
                .trim_end()
                .replace("explicit length", "length")
                .replace("undefined length", "length")
        })
        .collect()
}

fn same_attributes(dcmdump: &Path, before: &Path, after: &Path) {
    let (before, after) = (attributes(dcmdump, before), attributes(dcmdump, after));
    let first = before.iter().zip(&after).position(|(a, b)| a != b);
    assert!(
        first.is_none() && before.len() == after.len(),
        "attributes changed at line {first:?}: {:?} became {:?}",
        first.and_then(|i| before.get(i)),
        first.and_then(|i| after.get(i))
    );
}

fn transcode(input: &Path, dir: &Path) -> PathBuf {
    let record = record(input);
    let output = dir.join("explicit.dcm");
    let mut out = BufWriter::new(File::create(&output).expect("create"));
    let written = write_explicit_le(input, &record, &mut out).expect("transcode");
    drop(out);
    assert_eq!(written, std::fs::metadata(&output).expect("stat").len());
    output
}

/// DCMTK reads our output without a word of complaint.
fn dcmtk_accepts(output: &Path, dir: &Path) {
    let Some([dcmdump, dcmftest, dcmconv]) = tools(["dcmdump", "dcmftest", "dcmconv"]) else {
        return;
    };
    let dump = Command::new(&dcmdump)
        .args(["-E", path_str(output)])
        .output()
        .expect("dcmdump");
    assert!(
        dump.status.success() && dump.stderr.is_empty(),
        "dcmdump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let verdict = run_output(&dcmftest, &[path_str(output)]);
    assert!(verdict.starts_with("yes:"), "dcmftest: {verdict}");
    run(
        &dcmconv,
        &["+te", path_str(output), path_str(&dir.join("again.dcm"))],
    );
    let record = record(output);
    assert_eq!(record.transfer_syntax, EXPLICIT_VR_LITTLE_ENDIAN);
}

/// `prepare input stored` makes the stored instance; `decompress stored
/// reference` DCMTK's decompression of it. `max_difference` 0: identical.
fn against_dcmtk(
    input: &Path,
    prepare: Option<(&str, &[&str])>,
    decompress: (&str, &[&str]),
    max_difference: u32,
) -> Option<(PathBuf, tempfile::TempDir)> {
    let [dcmdump, decompressor] = tools(["dcmdump", decompress.0])?;
    let dir = tempfile::tempdir().expect("tempdir");
    let stored = dir.path().join("stored.dcm");
    match prepare {
        Some((program, args)) => {
            let [program] = tools([program])?;
            run(
                &program,
                &[args, &[path_str(input), path_str(&stored)]].concat(),
            );
        }
        None => {
            std::fs::copy(input, &stored).expect("copy");
        }
    }
    let reference = dir.path().join("reference.dcm");
    run(
        &decompressor,
        &[decompress.1, &[path_str(&stored), path_str(&reference)]].concat(),
    );
    let output = transcode(&stored, dir.path());
    dcmtk_accepts(&output, dir.path());
    let ours = native_frames(&output);
    let theirs = native_frames(&reference);
    assert_eq!(ours.len(), theirs.len());
    let bits = record(&output).attrs.bits_allocated.unwrap_or(8);
    for (frame, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let (max, mean) = difference(a, b, bits);
        assert!(
            max <= max_difference && mean <= f64::from(max_difference) / 8.0,
            "frame {}: max difference {max}, mean {mean}",
            frame + 1
        );
    }
    same_attributes(&dcmdump, &stored, &output);
    Some((output, dir))
}

fn xa() -> PathBuf {
    sample("multiframe/XA000001.dcm")
}

const DJPEG: (&str, &[&str]) = ("dcmdjpeg", &[]);
const TO_EXPLICIT: (&str, &[&str]) = ("dcmconv", &["+te"]);

#[test]
fn jpeg_baseline_multiframe() {
    let Some((output, _dir)) = against_dcmtk(&xa(), Some(("dcmcjpeg", &["+eb"])), DJPEG, 2) else {
        return;
    };
    assert_eq!(
        super::attribute(&output, dicom_dictionary_std::tags::LOSSY_IMAGE_COMPRESSION),
        "01"
    );
}

#[test]
fn jpeg_baseline_colour_becomes_rgb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(colour) = colour_instance(dir.path()) else {
        return;
    };
    let Some((output, _dir)) = against_dcmtk(&colour, Some(("dcmcjpeg", &["+eb"])), DJPEG, 4)
    else {
        return;
    };
    use dicom_dictionary_std::tags;
    assert_eq!(
        super::attribute(&output, tags::PHOTOMETRIC_INTERPRETATION),
        "RGB"
    );
    assert_eq!(super::attribute(&output, tags::PLANAR_CONFIGURATION), "0");
    assert_eq!(
        super::attribute(&output, tags::LOSSY_IMAGE_COMPRESSION),
        "01"
    );
}

#[test]
fn jpeg_lossless_and_jpeg_ls_and_rle() {
    let ct = sample("ct-phantom/CT000011.dcm");
    against_dcmtk(&ct, Some(("dcmcjpeg", &["+e1"])), DJPEG, 0);
    against_dcmtk(&xa(), Some(("dcmcjpls", &[])), ("dcmdjpls", &[]), 0);
    against_dcmtk(&sample("rle/CT000001.dcm"), None, ("dcmdrle", &[]), 0);
    let dir = tempfile::tempdir().expect("tempdir");
    if let Some(colour) = colour_instance(dir.path()) {
        against_dcmtk(
            &colour,
            Some(("dcmcjpls", &["+in"])),
            ("dcmdjpls", &["+px"]),
            0,
        );
        against_dcmtk(&colour, Some(("dcmcrle", &[])), ("dcmdrle", &[]), 0);
    }
}

/// Implicit VR with a Latin-1 patient name, big endian (8-bit colour and
/// 16-bit), deflated.
#[test]
fn native_syntaxes() {
    let mr = sample("mr-brain/MR000001.dcm");
    against_dcmtk(&mr, None, TO_EXPLICIT, 0);
    let ct = sample("ct-phantom/CT000011.dcm");
    against_dcmtk(&ct, Some(("dcmconv", &["+tb"])), TO_EXPLICIT, 0);
    against_dcmtk(&ct, Some(("dcmconv", &["+td"])), TO_EXPLICIT, 0);
    against_dcmtk(&xa(), Some(("dcmconv", &["+td"])), TO_EXPLICIT, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    if let Some(colour) = colour_instance(dir.path()) {
        against_dcmtk(&colour, Some(("dcmconv", &["+tb"])), TO_EXPLICIT, 0);
    }
}

/// A structured report has no pixel data: re-encoded as it is.
#[test]
fn without_pixel_data() {
    let Some([dcmdump]) = tools(["dcmdump"]) else {
        return;
    };
    let sr = sample("ct-phantom/SR000001.dcm");
    let dir = tempfile::tempdir().expect("tempdir");
    let output = transcode(&sr, dir.path());
    dcmtk_accepts(&output, dir.path());
    same_attributes(&dcmdump, &sr, &output);
}
