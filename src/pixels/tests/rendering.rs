//! `render` against DCMTK's `dcmj2pnm`: the same VOI choices give nearly
//! the same 8-bit pictures.

use std::path::{Path, PathBuf};

use dicom_pixeldata::image::{self, DynamicImage, GenericImageView};

use super::{colour_instance, path_str, record, run, sample, tools};
use crate::pixels::{ImageFormat, RenderOptions, VoiFunction, Window, render};

fn options(frame: u32, window: Option<Window>) -> RenderOptions {
    RenderOptions {
        frame,
        window,
        format: ImageFormat::Png,
        fit: None,
    }
}

fn ours(path: &Path, options: &RenderOptions) -> DynamicImage {
    let bytes = render(path, &record(path), options).expect("render");
    image::load_from_memory(&bytes).expect("our PNG/JPEG decodes")
}

fn dcmtk(dcmj2pnm: &Path, input: &Path, args: &[&str]) -> DynamicImage {
    let dir = tempfile::tempdir().expect("tempdir");
    let png = dir.path().join("dcmtk.png");
    run(
        dcmj2pnm,
        &[&["--write-png"], args, &[path_str(input), path_str(&png)]].concat(),
    );
    image::open(&png).expect("DCMTK's PNG")
}

/// Mean absolute difference per sample; the pictures must be the same size
/// and kind.
fn mean_difference(a: &DynamicImage, b: &DynamicImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    assert_eq!(a.color(), b.color());
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len() as f64
}

fn close(a: &DynamicImage, b: &DynamicImage, limit: f64, what: &str) {
    let d = mean_difference(a, b);
    eprintln!("{what}: mean difference {d:.3}");
    assert!(d <= limit, "{what}: mean difference {d:.3} > {limit}");
}

fn modified(input: &Path, dir: &Path, dcmodify_args: &[&str]) -> Option<PathBuf> {
    let [dcmodify] = tools(["dcmodify"])?;
    let copy = dir.join("modified.dcm");
    std::fs::copy(input, &copy).expect("copy");
    run(
        &dcmodify,
        &[dcmodify_args, &["-nb", path_str(&copy)]].concat(),
    );
    Some(copy)
}

#[test]
fn windows_like_dcmtk() {
    let Some([dcmj2pnm]) = tools(["dcmj2pnm"]) else {
        return;
    };
    let ct = sample("ct-phantom/CT000011.dcm");
    // the data set's first window (brain 40/80)
    close(
        &ours(&ct, &options(1, None)),
        &dcmtk(&dcmj2pnm, &ct, &["+Wi", "1"]),
        1.0,
        "first window",
    );
    let bone = Window {
        center: 600.0,
        width: 2800.0,
        function: VoiFunction::Linear,
    };
    close(
        &ours(&ct, &options(1, Some(bone))),
        &dcmtk(&dcmj2pnm, &ct, &["+Ww", "600", "2800"]),
        1.0,
        "requested window",
    );
    let sigmoid = Window {
        function: VoiFunction::Sigmoid,
        ..bone
    };
    close(
        &ours(&ct, &options(1, Some(sigmoid))),
        &dcmtk(&dcmj2pnm, &ct, &["+Ww", "600", "2800", "+Wfs"]),
        1.5,
        "sigmoid window",
    );
    let xa = sample("multiframe/XA000001.dcm");
    close(
        &ours(&xa, &options(20, None)),
        &dcmtk(&dcmj2pnm, &xa, &["+F", "20", "+Wi", "1"]),
        1.0,
        "frame 20",
    );
}

#[test]
fn min_max_without_a_window() {
    let Some([dcmj2pnm]) = tools(["dcmj2pnm"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mr = sample("mr-brain/MR000001.dcm");
    let Some(bare) = modified(
        &mr,
        dir.path(),
        &["-ea", "(0028,1050)", "-ea", "(0028,1051)"],
    ) else {
        return;
    };
    close(
        &ours(&bare, &options(1, None)),
        &dcmtk(&dcmj2pnm, &bare, &["+Wm"]),
        1.0,
        "min-max",
    );
}

#[test]
fn monochrome1_is_inverted() {
    let Some([dcmj2pnm]) = tools(["dcmj2pnm"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let ct = sample("ct-phantom/CT000011.dcm");
    let Some(inverted) = modified(&ct, dir.path(), &["-m", "(0028,0004)=MONOCHROME1"]) else {
        return;
    };
    let normal = ours(&ct, &options(1, None));
    let mono1 = ours(&inverted, &options(1, None));
    close(
        &mono1,
        &dcmtk(&dcmj2pnm, &inverted, &["+Wi", "1"]),
        1.0,
        "MONOCHROME1",
    );
    let sums = normal.as_bytes().iter().zip(mono1.as_bytes());
    assert!(
        sums.into_iter()
            .all(|(a, b)| u16::from(*a) + u16::from(*b) == 255)
    );
}

#[test]
fn colour_and_compressed() {
    let Some([dcmj2pnm, dcmcjpeg]) = tools(["dcmj2pnm", "dcmcjpeg"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(colour) = colour_instance(dir.path()) else {
        return;
    };
    let jpeg = dir.path().join("colour-jpeg.dcm");
    run(&dcmcjpeg, &["+eb", path_str(&colour), path_str(&jpeg)]);
    let ours = ours(&jpeg, &options(1, None));
    assert_eq!(ours.color(), image::ColorType::Rgb8);
    close(&ours, &dcmtk(&dcmj2pnm, &jpeg, &[]), 1.0, "colour JPEG");
    let rle = sample("rle/CT000001.dcm");
    close(
        &self::ours(&rle, &options(1, None)),
        &dcmtk(&dcmj2pnm, &rle, &["+Wi", "1"]),
        1.0,
        "RLE",
    );
}

/// Thumbnails fit the box, keep the aspect ratio and never grow.
#[test]
fn thumbnails_fit_the_box() {
    let us = sample("jpeg/US000001.dcm"); // 640 wide, 480 high
    let jpeg = |fit| RenderOptions {
        frame: 1,
        window: None,
        format: ImageFormat::Jpeg { quality: 80 },
        fit: Some(fit),
    };
    let bytes = render(&us, &record(&us), &jpeg((128, 128))).expect("render");
    assert_eq!(&bytes[..2], &[0xFF, 0xD8], "a JPEG");
    assert_eq!(
        image::load_from_memory(&bytes)
            .expect("decodes")
            .dimensions(),
        (128, 96)
    );
    let bytes = render(&us, &record(&us), &jpeg((1000, 60))).expect("render");
    assert_eq!(
        image::load_from_memory(&bytes)
            .expect("decodes")
            .dimensions(),
        (80, 60)
    );
    let bytes = render(&us, &record(&us), &jpeg((2000, 2000))).expect("render");
    assert_eq!(
        image::load_from_memory(&bytes)
            .expect("decodes")
            .dimensions(),
        (640, 480)
    );
}

#[test]
fn window_query_parameter() {
    let w = Window::from_query("40,80,linear").expect("valid");
    assert_eq!(
        (w.center, w.width, w.function),
        (40.0, 80.0, VoiFunction::Linear)
    );
    let w = Window::from_query("-600.5, 1500, LINEAR-EXACT").expect("valid");
    assert_eq!(
        (w.center, w.width, w.function),
        (-600.5, 1500.0, VoiFunction::LinearExact)
    );
    assert_eq!(
        Window::from_query("0,0.5,sigmoid").expect("valid").function,
        VoiFunction::Sigmoid
    );
    for bad in [
        "40,80",
        "40,80,cubic",
        "a,80,linear",
        "40,0.5,linear",
        "40,-1,sigmoid",
        "40,80,linear,1",
        "NaN,1,linear",
    ] {
        assert!(Window::from_query(bad).is_err(), "{bad}");
    }
}
