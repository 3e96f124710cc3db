//! Gateway to gateway, black box: two daemons on loopback, each in the
//! other's address book; A pushes a study to B, B forwards it to a DCMTK
//! storescp playing the PACS. Refusals (tampered, wrong signer, unknown
//! sender, replay), B down, A killed, a broken address-book edit, and
//! GnuPG/sq opening a package.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::gateways::{cli_ok, entry, gateway};
use common::{Daemon, Storescp, dataset_bytes, eventually, sop_instance, text};

const URA_A: &str = "11111111";
const URA_B: &str = "22222222";

fn ct_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(common::samples().join("ct-phantom"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    files
}

fn book_path(d: &Daemon) -> PathBuf {
    d.dir.path().join("peers.toml")
}

fn write_book(d: &Daemon, text: &str) {
    let path = book_path(d);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

fn outbox(d: &Daemon) -> Vec<serde_json::Value> {
    let out = cli_ok(d, &["outbox", "--json"]);
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

fn study_uid(d: &Daemon) -> String {
    let studies = d.studies();
    studies[0]["study_uid"].as_str().unwrap().to_string()
}

fn wait_complete(d: &Daemon) {
    assert!(
        eventually(Duration::from_secs(20), || d.studies()[0]["state"]
            == "complete"),
        "study never complete"
    );
}

fn journal_lines(d: &Daemon, needle: &str) -> Vec<String> {
    let out = d.cli(&["audit", "export"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// POSTs a package file to `d`'s inbox with curl, as the holder of
/// `cert`/`key` (or without a client certificate). HTTP/1.1 with
/// `Expect: 100-continue`, as gateways deliver: a refusal comes before the
/// body is sent. (Over HTTP/2 the server resets the unread stream after
/// answering, which curl reports as a framing error instead of the 403.)
fn post(d: &Daemon, file: &Path, client: Option<(&Path, &Path)>) -> (u16, serde_json::Value) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-skS",
        "--http1.1",
        "--max-time",
        "60",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
    ])
    .args(["-H", "Content-Type: application/octet-stream"])
    .arg("--data-binary")
    .arg(format!("@{}", file.display()));
    if let Some((cert, key)) = client {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    cmd.arg(format!("https://{}/relay/v1/inbox", d.http));
    let out = cmd.output().unwrap();
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = all.rsplit_once('\n').unwrap_or(("", "0"));
    let body = serde_json::from_str(body).unwrap_or_else(|_| {
        // what curl said, for the assertion message
        serde_json::Value::String(format!(
            "{body} / curl: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    });
    (code.trim().parse().unwrap_or(0), body)
}

fn tls_of(d: &Daemon) -> (PathBuf, PathBuf) {
    let dir = d.data_dir().join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

fn flip_byte(from: &Path, to: &Path, at: usize) {
    let mut bytes = std::fs::read(from).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x40;
    std::fs::write(to, bytes).unwrap();
}

#[test]
fn a_pushes_to_b_which_forwards_to_its_pacs() {
    let pacs = Storescp::start();
    let a = gateway("Ziekenhuis A", URA_A, "");
    let b = gateway(
        "Ziekenhuis B",
        URA_B,
        &format!("[forward]\npacs = \"STORESCP@127.0.0.1:{}\"\n", pacs.port),
    );
    write_book(&a, &entry(&b, "Ziekenhuis B", URA_B));
    write_book(&b, &entry(&a, "Ziekenhuis A", URA_A));
    // the public key is also served
    let served = a.get("/.well-known/pushgate/openpgp.asc");
    assert_eq!(served.status, 200);
    assert!(
        served
            .body
            .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    );
    assert!(!served.body.contains("PRIVATE"));

    let files = ct_files();
    a.send_all(&files);
    wait_complete(&a);
    let study = study_uid(&a);
    // the book reload is asynchronous: send once the entry is there
    assert!(
        eventually(Duration::from_secs(10), || a
            .cli(&[
                "send",
                &study,
                "--to-ura",
                URA_B,
                "--message",
                "Graag beoordelen, spoed",
                "--priority",
                "spoed"
            ])
            .status
            .success()),
        "send never accepted: {}",
        text(&a.cli(&["send", &study, "--to-ura", URA_B]))
    );
    assert!(
        eventually(Duration::from_secs(60), || outbox(&a)[0]["state"] == "sent"),
        "not delivered: {:?}\nB log:\n{}",
        outbox(&a),
        b.log()
    );
    let item = &outbox(&a)[0];
    assert_eq!(item["priority"], "spoed");
    let receipt: serde_json::Value =
        serde_json::from_str(item["receipt"]["receipt"].as_str().unwrap()).unwrap();
    assert_eq!(receipt["package_sha256"], item["package"]["sha256"]);
    assert_eq!(receipt["instances"], files.len() as u64);
    assert_eq!(receipt["receiver"]["ura"], URA_B);

    // B has it, with sender and message
    let studies = b.studies();
    assert_eq!(studies[0]["study_uid"], study.as_str());
    assert_eq!(studies[0]["num_instances"], files.len() as u64);
    assert_eq!(studies[0]["received_from"]["from_ura"], URA_A);
    assert_eq!(
        studies[0]["received_from"]["message"],
        "Graag beoordelen, spoed"
    );
    let table = cli_ok(&b, &["studies"]);
    assert!(table.contains("Ziekenhuis A"), "{table}");
    // B stores exactly the files A stored (the package carries them as
    // they are; that A stores what storescu sent is tested elsewhere)
    let stored_at = |d: &Daemon, sop: &str| {
        d.stored_files()
            .into_iter()
            .find(|p| p.to_string_lossy().contains(sop))
            .unwrap_or_else(|| panic!("{sop} not stored"))
    };
    for original in &files {
        let sop = sop_instance(original);
        let (at_a, at_b) = (stored_at(&a, &sop), stored_at(&b, &sop));
        assert!(
            std::fs::read(&at_a).unwrap() == std::fs::read(&at_b).unwrap(),
            "{sop}: B's file differs from A's"
        );
    }
    // and on at the PACS, data sets byte-identical
    assert!(
        eventually(Duration::from_secs(60), || pacs.files().len()
            == files.len()),
        "PACS has {} of {}\nB log:\n{}",
        pacs.files().len(),
        files.len(),
        b.log()
    );
    let mut sent: Vec<Vec<u8>> = a.stored_files().iter().map(|f| dataset_bytes(f)).collect();
    let mut arrived: Vec<Vec<u8>> = pacs.files().iter().map(|f| dataset_bytes(f)).collect();
    sent.sort();
    arrived.sort();
    assert!(
        sent == arrived,
        "data sets at the PACS differ from those sent"
    );

    // both journals: sent and delivered at A, received at B
    assert_eq!(journal_lines(&a, "\"step\":\"delivered\"").len(), 1);
    assert_eq!(journal_lines(&b, "\"step\":\"received\"").len(), 1);
    // each instance's final status at the PACS, once
    assert!(
        eventually(Duration::from_secs(20), || journal_lines(
            &b,
            "\"type\":\"forwarded\""
        )
        .len()
            == files.len()),
        "forwarded: {:?}",
        journal_lines(&b, "\"type\":\"forwarded\"")
    );
    assert!(
        journal_lines(&b, "\"type\":\"forwarded\"")
            .iter()
            .all(|l| l.contains("\"status\":0")),
        "{:?}",
        journal_lines(&b, "\"type\":\"forwarded\"")
    );
}

#[test]
fn refusals_retries_and_exactly_once() {
    let mut a = gateway("Ziekenhuis A", URA_A, "");
    let mut b = gateway("Ziekenhuis B", URA_B, "");
    write_book(&a, &entry(&b, "Ziekenhuis B", URA_B));
    let a_entry = entry(&a, "Ziekenhuis A", URA_A);
    write_book(&b, &a_entry);
    let files = ct_files();
    a.send_all(&files);
    wait_complete(&a);
    let study = study_uid(&a);

    // B is down: A keeps the package and retries
    b.kill9();
    assert!(
        eventually(Duration::from_secs(10), || a
            .cli(&["send", &study, "--to-ura", URA_B])
            .status
            .success()),
        "send never accepted"
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            let o = outbox(&a);
            o[0]["state"] == "pending" && o[0]["attempts"].as_u64() >= Some(1)
        }),
        "no failed attempt recorded: {:?}",
        outbox(&a)
    );
    let pending = outbox(&a)[0].clone();
    assert!(
        pending["last_error"].as_str().unwrap().contains("connect"),
        "{pending}"
    );
    let id = pending["id"].as_str().unwrap().to_string();
    let package = a.data_dir().join("relay/outbox").join(format!("{id}.pgp"));
    let copy = a.dir.path().join("captured.pgp");
    std::fs::copy(&package, &copy).unwrap();
    // A dies between attempts; the package must survive that
    a.kill9();

    b.spawn().unwrap();
    let (a_cert, a_key) = tls_of(&a);
    let as_a = Some((a_cert.as_path(), a_key.as_path()));

    // tampered ciphertext: in the middle, and in the last bytes
    let size = std::fs::metadata(&copy).unwrap().len() as usize;
    for at in [size / 2, size - 3] {
        let tampered = a.dir.path().join("tampered.pgp");
        flip_byte(&copy, &tampered, at);
        let (status, body) = post(&b, &tampered, as_a);
        assert_eq!(status, 400, "tampered at {at}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("rejected"),
            "{body}"
        );
    }
    // an unknown sender: no client certificate, or one not in the book
    let (status, body) = post(&b, &copy, None);
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("unknown sender"),
        "{body}"
    );
    let (b_cert, b_key) = tls_of(&b);
    let (status, body) = post(&b, &copy, Some((&b_cert, &b_key)));
    assert_eq!(status, 403, "{body}");
    // a wrong signer: a package GnuPG signed with another key, encrypted
    // to B, delivered with A's certificate
    let wrong = wrong_signer_package(&b, a.dir.path());
    let (status, body) = post(&b, &wrong, as_a);
    assert_eq!(status, 403, "wrong signer: {body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("sign"),
        "{body}"
    );
    // none of that was ingested; each refusal journaled with its reason
    assert_eq!(b.studies().as_array().unwrap().len(), 0);
    assert!(journal_lines(&b, "\"step\":\"refused\"").len() >= 5);
    assert!(b.is_running());

    // an address-book edit that does not parse keeps the previous book
    write_book(&b, &format!("{a_entry}\n[[gateway]\nname = \"broken"));
    assert!(
        eventually(Duration::from_secs(10), || b.log().contains("peers.toml")
            && b.log().contains("the previous one stays in force")),
        "no log of the broken book:\n{}",
        b.log()
    );

    // A comes back and delivers its package, once
    a.spawn().unwrap();
    assert!(
        eventually(Duration::from_secs(60), || outbox(&a)[0]["state"] == "sent"),
        "not delivered after restart: {:?}\nB log:\n{}",
        outbox(&a),
        b.log()
    );
    assert_eq!(b.studies()[0]["num_instances"], files.len() as u64);
    // the same package again is a replay: refused, with the first receipt
    let (status, body) = post(&b, &copy, as_a);
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("replayed"),
        "{body}"
    );
    assert!(body["receipt"].as_str().unwrap().contains("package_sha256"));
    assert_eq!(journal_lines(&b, "\"step\":\"received\"").len(), 1);
    assert_eq!(b.studies()[0]["num_instances"], files.len() as u64);
}

/// A GnuPG key that is not A's signs a ZIP for B.
fn wrong_signer_package(b: &Daemon, dir: &Path) -> PathBuf {
    let home = dir.join("gnupg-wrong");
    std::fs::create_dir_all(&home).unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .args(["--batch", "--yes", "--homedir"])
            .arg(&home)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "gpg {args:?}: {}", text(&out));
        out
    };
    gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "Mallory <m@example.org>",
        "ed25519",
        "sign",
        "never",
    ]);
    let cert = dir.join("b.asc");
    std::fs::write(&cert, cli_ok(b, &["keys", "show", "--armor"])).unwrap();
    gpg(&["--import", cert.to_str().unwrap()]);
    let zip = dir.join("any.zip");
    std::fs::write(&zip, b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").unwrap();
    let out = dir.join("wrong.pgp");
    gpg(&[
        "--trust-model",
        "always",
        "-z",
        "0",
        "--local-user",
        "Mallory",
        "--recipient",
        "Ziekenhuis B",
        "--output",
        out.to_str().unwrap(),
        "--sign",
        "--encrypt",
        zip.to_str().unwrap(),
    ]);
    out
}

#[test]
fn gnupg_and_sq_open_a_package_and_the_zip_is_a_file_set() {
    let a = gateway("Ziekenhuis A", URA_A, "");
    let mut b = gateway("Ziekenhuis B", URA_B, "");
    write_book(&a, &entry(&b, "Ziekenhuis B", URA_B));
    let files = ct_files();
    a.send_all(&files);
    wait_complete(&a);
    let study = study_uid(&a);
    // B stays down: the package stays in A's outbox for us to read
    b.kill9();
    assert!(eventually(Duration::from_secs(10), || a
        .cli(&["send", &study, "--to-ura", URA_B])
        .status
        .success()));
    let package = || -> Option<PathBuf> {
        let id = outbox(&a)[0]["id"].as_str()?.to_string();
        let p = a.data_dir().join("relay/outbox").join(format!("{id}.pgp"));
        (p.exists() && outbox(&a)[0]["package"].is_object()).then_some(p)
    };
    assert!(eventually(Duration::from_secs(30), || package().is_some()));
    let package = package().unwrap();
    let dir = a.dir.path();

    // GnuPG with B's secret key and A's certificate
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    let gpg = |args: &[&str]| {
        Command::new("gpg")
            .args([
                "--batch",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--homedir",
            ])
            .arg(&home)
            .args(args)
            .output()
            .unwrap()
    };
    let b_key = b.data_dir().join("relay/key.pgp");
    let a_cert = dir.join("a.asc");
    std::fs::write(&a_cert, cli_ok(&a, &["keys", "show", "--armor"])).unwrap();
    for f in [&b_key, &a_cert] {
        let out = gpg(&["--import", f.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "import {}: {}",
            f.display(),
            text(&out)
        );
    }
    let zip = dir.join("gpg.zip");
    let out = gpg(&[
        "--status-fd",
        "1",
        "--trust-model",
        "always",
        "--output",
        zip.to_str().unwrap(),
        "--decrypt",
        package.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "gpg --decrypt: {}", text(&out));
    let status = String::from_utf8_lossy(&out.stdout);
    let a_fpr = cli_ok(&a, &["keys", "show"])
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint").map(|f| f.trim().to_string()))
        .unwrap();
    assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
    assert!(
        status.contains("VALIDSIG") && status.contains(&a_fpr),
        "{status}"
    );

    // sq with the same keys gives the same ZIP
    let sq_zip = dir.join("sq.zip");
    let out = Command::new("sq")
        .args(["decrypt", "--recipient-key"])
        .arg(&b_key)
        .arg("--signer-cert")
        .arg(&a_cert)
        .arg("--output")
        .arg(&sq_zip)
        .arg(&package)
        .output()
        .unwrap();
    assert!(out.status.success(), "sq decrypt: {}", text(&out));
    assert_eq!(
        std::fs::read(&zip).unwrap(),
        std::fs::read(&sq_zip).unwrap()
    );

    // the ZIP opens like a CD: DICOMDIR passes dcmftest, every image is there
    let unpacked = dir.join("unpacked");
    let out = Command::new("unzip")
        .arg("-q")
        .arg(&zip)
        .arg("-d")
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(out.status.success(), "unzip: {}", text(&out));
    let out = Command::new("dcmftest")
        .arg(unpacked.join("DICOMDIR"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("yes:"),
        "dcmftest: {}",
        text(&out)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("MANIFEST.JSON")).unwrap()).unwrap();
    assert_eq!(manifest["sender"]["ura"], URA_A);
    assert_eq!(manifest["recipient"]["ura"], URA_B);
    assert_eq!(manifest["instances"], files.len() as u64);
    let mut images = 0;
    for f in manifest["files"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let bytes = std::fs::read(unpacked.join(name)).unwrap();
        assert_eq!(bytes.len() as u64, f["size"].as_u64().unwrap(), "{name}");
        images += name.starts_with("DICOM/") as usize;
    }
    assert_eq!(images, files.len());
}

/// A TCP relay on 127.0.0.1 to `to`; while `slow` is set it passes the
/// client's bytes on at about 300 kB/s, counting them in `passed`.
fn throttling_proxy(
    to: std::net::SocketAddr,
    slow: std::sync::Arc<std::sync::atomic::AtomicBool>,
    passed: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> u16 {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = std::net::TcpStream::connect(to) else {
                continue;
            };
            let (mut client_r, mut server_w) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (slow, passed) = (slow.clone(), passed.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = client_r.read(&mut buf) {
                    if n == 0 || server_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    passed.fetch_add(n as u64, Ordering::SeqCst);
                    if slow.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                let _ = server_w.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
                let _ = client.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn a_grant_pushes_once_complete_and_a_kill_mid_send_delivers_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    // a longer quiet time, so the push is seen waiting for the study
    let mut a = gateway(
        "Ziekenhuis A",
        URA_A,
        "[dicom]\nlisten = \"127.0.0.1:DICOM_PORT\"\nstable_after = \"6s\"\n",
    );
    let b = gateway("Ziekenhuis B", URA_B, "");
    write_book(&b, &entry(&a, "Ziekenhuis A", URA_A));
    // A reaches B through a slow link, so it can be killed mid-upload
    let (slow, passed) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU64::new(0)));
    let port = throttling_proxy(b.http, slow.clone(), passed.clone());
    let b_entry = entry(&b, "Ziekenhuis B", URA_B).replace(
        &format!("https://{}", b.http),
        &format!("https://127.0.0.1:{port}"),
    );
    write_book(&a, &b_entry);

    let files = ct_files();
    a.send_all(&files);
    let study = study_uid(&a);
    assert_eq!(a.studies()[0]["state"], "arriving");
    // a grant for B's URA pushes the study to B's gateway as well
    assert!(
        eventually(Duration::from_secs(5), || {
            a.cli(&[
                "share",
                "--legal-basis",
                "referral",
                &study,
                "--to-ura",
                URA_B,
                "--json",
            ])
            .status
            .success()
                && !outbox(&a).is_empty()
        }),
        "no push for the grant: {:?}\n{}",
        outbox(&a),
        a.log()
    );
    let item = outbox(&a)[0].clone();
    assert_eq!(item["by"], "grant", "{item}");
    assert!(item["grant"].is_string(), "{item}");
    assert_eq!(item["state"], "waiting", "{item}");
    assert_eq!(outbox(&a).len(), 1, "one push per grant");

    // once complete it is sealed and sent; kill A mid-upload
    assert!(
        eventually(Duration::from_secs(30), || passed.load(Ordering::SeqCst)
            > 400_000),
        "upload never started: {:?}",
        outbox(&a)
    );
    // mid-send: more than 400 kB passed, less than the package, so B
    // cannot have answered yet
    let sending = outbox(&a)[0].clone();
    a.kill9();
    let size = sending["package"]["size"].as_u64().unwrap();
    assert!(
        passed.load(Ordering::SeqCst) < size,
        "the upload finished before the kill"
    );
    assert_eq!(b.studies().as_array().unwrap().len(), 0);

    // after the restart the same package goes again, and arrives once
    slow.store(false, Ordering::SeqCst);
    a.spawn().unwrap();
    assert!(
        eventually(Duration::from_secs(60), || outbox(&a)[0]["state"] == "sent"),
        "not delivered after restart: {:?}\nB log:\n{}",
        outbox(&a),
        b.log()
    );
    let sent = outbox(&a)[0].clone();
    // the same package, not a second one
    assert_eq!(sent["package"]["id"], sending["package"]["id"], "{sent}");
    assert_eq!(
        journal_lines(&b, "\"step\":\"received\"").len(),
        1,
        "{:#?}",
        journal_lines(&b, "\"type\":\"relay\"")
    );
    assert_eq!(journal_lines(&a, "\"step\":\"delivered\"").len(), 1);
    assert_eq!(b.studies().as_array().unwrap().len(), 1);
    assert_eq!(b.studies()[0]["num_instances"], files.len() as u64);
    // (the killed upload may still reach B whole from the socket buffers,
    // concurrently with the resend: B takes one, tells the other to come
    // back, and then answers it as a replay with the first receipt)
}

#[test]
fn keys_init_makes_a_private_key_once_and_rsa_on_request() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pushgate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\norg_name = \"Ziekenhuis R\"\norg_ura = \"33333333\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pushgate"))
            .args(args)
            .args(["--config", config.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = run(&["keys", "init", "--algorithm", "rsa4096"]);
    assert!(out.status.success(), "{}", text(&out));
    let key = dir.path().join("data/relay/key.pgp");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let fpr = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint").map(|f| f.trim().to_string()))
        .unwrap();
    // a second init keeps the key it has
    let again = run(&["keys", "init"]);
    assert!(!again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("already"), "{}", text(&again));
    let shown = run(&["keys", "show"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains(&fpr));
    // GnuPG reads the public certificate: RSA 4096, our fingerprint
    let armored = run(&["keys", "show", "--armor"]);
    let cert = dir.path().join("cert.asc");
    std::fs::write(&cert, &armored.stdout).unwrap();
    let home = dir.path().join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let gpg = Command::new("gpg")
        .args(["--batch", "--with-colons", "--homedir"])
        .arg(&home)
        .arg("--show-keys")
        .arg(&cert)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&gpg.stdout);
    assert!(gpg.status.success(), "{}", text(&gpg));
    let primary = listing.lines().find(|l| l.starts_with("pub:")).unwrap();
    assert_eq!(primary.split(':').nth(2), Some("4096"), "{listing}");
    assert_eq!(primary.split(':').nth(3), Some("1"), "RSA: {listing}");
    assert!(listing.contains(&fpr), "{listing}");
    assert!(!String::from_utf8_lossy(&armored.stdout).contains("PRIVATE"));
    // a key file others can read is refused, not used
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loose = run(&["keys", "show"]);
    assert!(!loose.status.success(), "{}", text(&loose));
}

/// `POST /admin/v1/outbox` with the admin token: (status, body).
fn admin_send(d: &Daemon, body: &str) -> (u16, String) {
    let token = std::fs::read_to_string(d.data_dir().join("admin.token")).unwrap();
    let reply = d.https(
        "POST",
        "/admin/v1/outbox",
        common::Ask {
            headers: vec![("Authorization", format!("Bearer {}", token.trim()))],
            body: Some(body.to_string()),
            ..common::Ask::default()
        },
    );
    (reply.status, reply.body)
}

/// A push carries what its grant covers, and only while the grant lives:
/// a push naming an unknown grant is refused (it used to go out as the
/// whole study); revoking or expiring the grant cancels a push waiting for
/// its next attempt, which then never reaches the peer.
#[test]
fn a_push_for_a_grant_needs_a_live_grant_and_dies_with_it() {
    let a = gateway("Ziekenhuis A", URA_A, "");
    let mut b = gateway("Ziekenhuis B", URA_B, "");
    write_book(&a, &entry(&b, "Ziekenhuis B", URA_B));
    write_book(&b, &entry(&a, "Ziekenhuis A", URA_A));
    a.send_all(&ct_files());
    wait_complete(&a);
    let study = study_uid(&a);

    // an unknown grant, and a grant for another organization: refused
    let (status, body) = admin_send(
        &a,
        &format!(r#"{{"study":"{study}","to_ura":"{URA_B}","grant":"no-such-grant"}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no grant no-such-grant"), "{body}");
    let for_a = cli_ok(
        &a,
        &[
            "share",
            "--legal-basis",
            "referral",
            &study,
            "--to-ura",
            URA_A,
            "--json",
        ],
    );
    let for_a: serde_json::Value = serde_json::from_str(&for_a).unwrap();
    let (status, body) = admin_send(
        &a,
        &format!(
            r#"{{"study":"{study}","to_ura":"{URA_B}","grant":"{}"}}"#,
            for_a["id"].as_str().unwrap()
        ),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not for URA 22222222"), "{body}");
    assert!(outbox(&a).is_empty(), "{:?}", outbox(&a));

    // B is down; a grant for B's URA queues a push that keeps failing
    b.kill9();
    // the grant's push has been tried (and failed) at least once (or, for
    // a grant of seconds, is cancelled already)
    let retrying = |grant: &serde_json::Value| {
        let id = grant["id"].as_str().unwrap().to_string();
        assert!(
            eventually(Duration::from_secs(30), || outbox(&a)
                .iter()
                .any(|i| i["grant"] == id.as_str()
                    && (i["attempts"].as_u64() >= Some(1)
                        || i["state"] == "cancelled"))),
            "no attempt for the grant's push: {:?}",
            outbox(&a)
        );
        id
    };
    let revoked: serde_json::Value = serde_json::from_str(&cli_ok(
        &a,
        &[
            "share",
            "--legal-basis",
            "referral",
            &study,
            "--to-ura",
            URA_B,
            "--json",
        ],
    ))
    .unwrap();
    let revoked_id = retrying(&revoked);
    cli_ok(&a, &["revoke", &revoked_id]);
    let state_of = |grant: &str| {
        outbox(&a)
            .into_iter()
            .find(|i| i["grant"] == grant)
            .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(10), || state_of(&revoked_id)["state"]
            == "cancelled"),
        "revoking left the push open: {}",
        state_of(&revoked_id)
    );
    assert_eq!(state_of(&revoked_id)["last_error"], "grant revoked");

    // the same for a grant that expires while its push waits
    let expiring: serde_json::Value = serde_json::from_str(&cli_ok(
        &a,
        &[
            "share",
            "--legal-basis",
            "referral",
            &study,
            "--to-ura",
            URA_B,
            "--expires",
            "3s",
            "--json",
        ],
    ))
    .unwrap();
    let expiring_id = retrying(&expiring);
    assert!(
        eventually(Duration::from_secs(40), || state_of(&expiring_id)["state"]
            == "cancelled"),
        "expiry left the push open: {}",
        state_of(&expiring_id)
    );
    assert_eq!(state_of(&expiring_id)["last_error"], "grant expired");

    // the outbox says why; the journal has both
    let listing = cli_ok(&a, &["outbox"]);
    assert!(listing.contains("cancelled: grant revoked"), "{listing}");
    assert!(listing.contains("cancelled: grant expired"), "{listing}");
    let cancelled = journal_lines(&a, "\"step\":\"cancelled\"");
    assert_eq!(cancelled.len(), 2, "{cancelled:#?}");
    assert!(
        cancelled
            .iter()
            .any(|l| l.contains(&revoked_id) && l.contains("grant revoked"))
    );
    assert!(
        cancelled
            .iter()
            .any(|l| l.contains(&expiring_id) && l.contains("grant expired"))
    );

    // B comes back: neither push is ever delivered
    b.spawn().unwrap();
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(b.studies().as_array().unwrap().len(), 0, "{}", a.log());
    assert!(journal_lines(&a, "\"step\":\"delivered\"").is_empty());
    assert!(
        outbox(&a).iter().all(|i| i["state"] == "cancelled"),
        "{:?}",
        outbox(&a)
    );
}
