//! Decode speed of one 512×512 16-bit CT slice in JPEG Lossless SV1, side
//! by side with DCMTK's dcmdjpeg on the same file. Not run by default:
//!
//! ```sh
//! cargo test --release --lib pixels::tests::speed -- --ignored --nocapture
//! ```
//!
//! dcmdjpeg is a process per file: its time includes start-up, reading and
//! writing; `dcmconv +te` on the decompressed file (the same work without
//! decoding) is timed too and subtracted for the decoder's share.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{path_str, record, run, sample, tools};
use crate::pixels::decode_frame;

const RUNS: u32 = 30;

fn per_run(program: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    for _ in 0..RUNS {
        let status = Command::new(program).args(args).status().expect("run");
        assert!(status.success());
    }
    start.elapsed() / RUNS
}

#[test]
#[ignore]
fn jpeg_lossless_ct_slice_against_dcmdjpeg() {
    let Some([dcmscale, dcmcjpeg, dcmdjpeg, dcmconv]) =
        tools(["dcmscale", "dcmcjpeg", "dcmdjpeg", "dcmconv"])
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (native, jpeg, out) = (
        dir.path().join("ct512.dcm"),
        dir.path().join("ct512-jpeg.dcm"),
        dir.path().join("out.dcm"),
    );
    let ct = sample("ct-phantom/CT000011.dcm");
    run(&dcmscale, &["+Sxf", "2", path_str(&ct), path_str(&native)]);
    run(&dcmcjpeg, &["+e1", path_str(&native), path_str(&jpeg)]);
    let record = record(&jpeg);
    assert_eq!(record.attrs.rows, Some(512));

    decode_frame(&jpeg, &record, 1).expect("warm up");
    let start = Instant::now();
    for _ in 0..RUNS {
        decode_frame(&jpeg, &record, 1).expect("decode");
    }
    let ours = start.elapsed() / RUNS;

    let dcmtk = per_run(&dcmdjpeg, &[path_str(&jpeg), path_str(&out)]);
    let baseline = per_run(&dcmconv, &["+te", path_str(&native), path_str(&out)]);
    let dcmtk_decoding = dcmtk.saturating_sub(baseline);
    println!(
        "512x512x16 JPEG lossless SV1 ({} KiB), per frame:\n  \
         pushgate decode_frame: {ours:?}\n  \
         dcmdjpeg process:      {dcmtk:?} (dcmconv +te process: {baseline:?}; difference {dcmtk_decoding:?})\n  \
         ratio pushgate / dcmdjpeg decoding: {:.2}",
        std::fs::metadata(&jpeg).expect("size").len() / 1024,
        ours.as_secs_f64() / dcmtk_decoding.as_secs_f64().max(1e-9)
    );
}
