//! Interoperability with software nobody here wrote: GnuPG 2.2 (`gpg`)
//! and sq 0.27 decrypt and verify our packages and receipts, and we open
//! what GnuPG seals. Plus an ignored throughput comparison with gpg.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use sequoia_openpgp as pgp;

use pgp::serialize::SerializeInto;

use super::tests::{data, key, open_bytes, peer, seal_bytes};
use super::*;

const GPG: &str = "/usr/bin/gpg";
const SQ: &str = "/usr/bin/sq";

/// A throw-away GnuPG home; its agent is killed on drop.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        // Under /tmp: the agent's socket path must stay short.
        let home = tempfile::Builder::new()
            .prefix("pg-gpg")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).unwrap();
        Gpg { home }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// Runs gpg with status lines on stdout; returns the output.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(GPG)
            .args(["--batch", "--no-tty", "--homedir"])
            .arg(self.home.path())
            .args(["--pinentry-mode", "loopback", "--passphrase", ""])
            .args(["--trust-model", "always", "--status-fd", "1"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let status = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}\n{status}",
            String::from_utf8_lossy(&out.stderr)
        );
        status
    }

    fn import(&self, name: &str, armored: &[u8]) {
        let file = self.path(name);
        fs::write(&file, armored).unwrap();
        self.ok(&["--import", file.to_str().unwrap()]);
    }

    fn import_secret(&self, k: &OwnKey) {
        let tsk = k.cert().as_tsk().armored().to_vec().unwrap();
        self.import(&format!("{}.tsk", k.fingerprint()), &tsk);
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("/usr/bin/gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "all"])
            .status();
    }
}

fn rsa_key() -> &'static OwnKey {
    static RSA: OnceLock<OwnKey> = OnceLock::new();
    RSA.get_or_init(|| OwnKey::generate("rsa <rsa@gw.example>", KeyAlgorithm::Rsa4096).unwrap())
}

/// gpg decrypts what `sender` sealed for `recipient` and reports a good,
/// valid signature by the sender's certificate.
fn gpg_decrypts(sender: &OwnKey, recipient: &OwnKey, len: usize) {
    let gpg = Gpg::new();
    gpg.import_secret(recipient);
    gpg.import("sender.asc", sender.public_armored().as_bytes());
    let plain = data(len);
    let msg = gpg.path("package.pgp");
    fs::write(&msg, seal_bytes(sender, &peer(recipient), &plain)).unwrap();
    let out = gpg.path("package.zip");
    let status = gpg.ok(&[
        "--output",
        out.to_str().unwrap(),
        "--decrypt",
        msg.to_str().unwrap(),
    ]);
    assert!(fs::read(&out).unwrap() == plain, "gpg's plaintext differs");
    assert!(status.contains("[GNUPG:] DECRYPTION_OKAY"), "{status}");
    assert!(status.contains("[GNUPG:] GOODSIG "), "{status}");
    let validsig = status
        .lines()
        .find(|l| l.starts_with("[GNUPG:] VALIDSIG "))
        .unwrap_or_else(|| panic!("no VALIDSIG in {status}"));
    assert!(
        validsig.ends_with(&sender.fingerprint()),
        "VALIDSIG not for the sender {}: {validsig}",
        sender.fingerprint()
    );
    assert!(!status.contains("DECRYPTION_FAILED"), "{status}");
}

#[test]
fn gpg_decrypts_and_verifies_cv25519_packages() {
    let (a, b) = (key("a"), key("b"));
    gpg_decrypts(&a, &b, 3 << 20);
    gpg_decrypts(&a, &b, 0);
}

#[test]
fn gpg_decrypts_and_verifies_rsa4096_packages() {
    let rsa = rsa_key();
    gpg_decrypts(rsa, rsa, 1 << 20);
    gpg_decrypts(&key("a"), rsa, 1000);
}

#[test]
fn we_open_what_gpg_seals_without_compression() {
    let (a, b) = (key("a"), key("b"));
    let gpg = Gpg::new();
    gpg.import_secret(&a);
    gpg.import("b.asc", b.public_armored().as_bytes());
    let plain = data(2 << 20);
    let input = gpg.path("package.zip");
    fs::write(&input, &plain).unwrap();
    let seal_with = |compress: &str, name: &str| {
        let out = gpg.path(name);
        gpg.ok(&[
            "-z",
            compress,
            "--local-user",
            &a.fingerprint(),
            "--recipient",
            &b.fingerprint(),
            "--output",
            out.to_str().unwrap(),
            "--sign",
            "--encrypt",
            input.to_str().unwrap(),
        ]);
        fs::read(out).unwrap()
    };
    let (got, v) = open_bytes(&b, &peer(&a), seal_with("0", "plain.pgp")).unwrap();
    assert!(got == plain);
    assert_eq!(v.signer, a.fingerprint());
    assert_eq!(v.file_name, "package.zip");
    // gpg compresses by default; packages are never compressed.
    let r = open_bytes(&b, &peer(&a), seal_with("6", "zlib.pgp"));
    assert!(matches!(r, Err(PgpError::UnexpectedStructure(_))), "{r:?}");
}

#[test]
fn sq_decrypts_and_verifies_packages() {
    for (sender, recipient) in [(key("a"), key("b")), (key("c"), rsa_key().clone())] {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let tsk = recipient.cert().as_tsk().armored().to_vec().unwrap();
        fs::write(p("recipient.tsk"), tsk).unwrap();
        fs::write(p("sender.asc"), sender.public_armored()).unwrap();
        let plain = data(1 << 20);
        fs::write(
            p("package.pgp"),
            seal_bytes(&sender, &peer(&recipient), &plain),
        )
        .unwrap();
        let out = Command::new(SQ)
            .arg("decrypt")
            .arg("--recipient-key")
            .arg(p("recipient.tsk"))
            .arg("--signer-cert")
            .arg(p("sender.asc"))
            .arg("--output")
            .arg(p("package.zip"))
            .arg(p("package.pgp"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sq decrypt failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            fs::read(p("package.zip")).unwrap() == plain,
            "sq's plaintext differs"
        );
    }
}

#[test]
fn gpg_verifies_receipts_and_rejects_modified_ones() {
    let a = key("a");
    let gpg = Gpg::new();
    gpg.import("a.asc", a.public_armored().as_bytes());
    let receipt = br#"{"package":"p1","status":"stored"}"#;
    let sig = sign_detached(&a, receipt).unwrap();
    fs::write(gpg.path("receipt.json"), receipt).unwrap();
    fs::write(gpg.path("receipt.asc"), &sig).unwrap();
    let verify = || {
        gpg.run(&[
            "--verify",
            gpg.path("receipt.asc").to_str().unwrap(),
            gpg.path("receipt.json").to_str().unwrap(),
        ])
    };
    let out = verify();
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{status}");
    assert!(status.contains("[GNUPG:] GOODSIG "), "{status}");
    assert!(status.contains(&a.fingerprint()), "{status}");
    verify_detached(&peer(&a), receipt, &sig).unwrap();

    fs::write(
        gpg.path("receipt.json"),
        br#"{"package":"p1","status":"lost"}"#,
    )
    .unwrap();
    let out = verify();
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "gpg accepted a modified receipt");
    assert!(status.contains("[GNUPG:] BADSIG "), "{status}");
}

#[test]
fn gpg_sees_no_secret_packets_in_the_public_key() {
    let a = key("a");
    let gpg = Gpg::new();
    let file = gpg.path("a.asc");
    fs::write(&file, a.public_armored()).unwrap();
    let listing = gpg.ok(&["--list-packets", file.to_str().unwrap()]);
    assert!(listing.contains(":public key packet:"), "{listing}");
    assert!(listing.contains(":public sub key packet:"), "{listing}");
    assert!(!listing.contains("secret"), "{listing}");
}

/// Throughput of seal and open against gpg on the same ~263 MB file.
/// `cargo test --release --lib relay::openpgp::tests_interop::throughput -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: writes ~1.3 GB to a temp dir, takes a minute"]
fn throughput_against_gpg() {
    const LEN: usize = 263_000_000;
    let (a, b) = (key("a"), key("b"));
    let gpg = Gpg::new();
    gpg.import_secret(&a);
    gpg.import_secret(&b);
    let input = gpg.path("package.zip");
    fs::write(&input, data(LEN)).unwrap();
    let mb = LEN as f64 / 1e6;
    let timed = |label: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        let s = t.elapsed().as_secs_f64();
        println!("{label:<44} {s:6.2} s {:7.1} MB/s", mb / s);
        s
    };

    let ours = gpg.path("ours.pgp");
    let seal_file = |out: &Path, chunk: usize| {
        let sink = fs::File::create(out).unwrap();
        let mut sealer = seal(&a, &peer(&b), "package.zip", sink).unwrap();
        let mut src = fs::File::open(&input).unwrap();
        let mut buf = vec![0; chunk];
        loop {
            let n = src.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            sealer.write_all(&buf[..n]).unwrap();
        }
        sealer.finish().unwrap();
    };
    let t_seal = timed("pushgate seal (1 MiB writes)", &mut || {
        seal_file(&ours, 1 << 20)
    });
    timed("pushgate seal (8 KiB writes)", &mut || {
        seal_file(&ours, 8 << 10)
    });
    let t_open = timed("pushgate open (read+verify)", &mut || {
        let mut opened = open(&b, &peer(&a), fs::File::open(&ours).unwrap()).unwrap();
        let mut out = fs::File::create(gpg.path("ours.out")).unwrap();
        let mut buf = vec![0; 1 << 20];
        loop {
            let n = opened.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).unwrap();
        }
        opened.finish().unwrap();
    });
    let (af, bf) = (a.fingerprint(), b.fingerprint());
    let gpg_seal = |z: &str, name: &str| {
        let out = gpg.path(name);
        let _ = fs::remove_file(&out);
        let out = out.to_str().unwrap().to_owned();
        let mut args = vec!["--local-user", &af, "--recipient", &bf, "--output", &out];
        if !z.is_empty() {
            args.extend(["-z", z]);
        }
        args.extend(["--sign", "--encrypt", input.to_str().unwrap()]);
        gpg.ok(&args);
    };
    let t_gpg0 = timed("gpg --sign --encrypt -z 0", &mut || {
        gpg_seal("0", "gpg0.pgp")
    });
    let t_gpgz = timed("gpg --sign --encrypt (default compression)", &mut || {
        gpg_seal("", "gpgz.pgp")
    });
    let t_gpgd = timed("gpg --decrypt (of our package)", &mut || {
        let out = gpg.path("gpg.out");
        let _ = fs::remove_file(&out);
        gpg.ok(&[
            "--output",
            out.to_str().unwrap(),
            "--decrypt",
            ours.to_str().unwrap(),
        ]);
    });
    println!(
        "seal: {:.2}x gpg -z 0, {:.2}x gpg default; open: {:.2}x gpg --decrypt",
        t_gpg0 / t_seal,
        t_gpgz / t_seal,
        t_gpgd / t_open
    );
}
