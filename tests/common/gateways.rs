//! Gateways for the relay and queue tests: a daemon with an address book
//! that starts empty, and the entry a peer lists for it.

use super::{Daemon, text};

/// A daemon whose address book starts empty (filled in once the peer's
/// keys exist); `extra` is more configuration after `[relay]`.
pub fn gateway(name: &str, ura: &str, extra: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("peers.toml");
    std::fs::write(&book, "# filled in by the test\n").unwrap();
    Daemon::start_in(
        dir,
        &format!(
            "org_name = \"{name}\"\norg_ura = \"{ura}\"\n[relay]\naddress_book = \"{}\"\n{extra}",
            book.display()
        ),
    )
}

/// `pushgate ARGS` against `d`, which must succeed; its stdout.
pub fn cli_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.cli(args);
    assert!(out.status.success(), "pushgate {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The address-book entry for `d`: its OpenPGP certificate and TLS pin.
pub fn entry(d: &Daemon, name: &str, ura: &str) -> String {
    let armored = cli_ok(d, &["keys", "show", "--armor"]);
    let shown = cli_ok(d, &["keys", "show"]);
    let pin = shown
        .lines()
        .find_map(|l| l.strip_prefix("tls_spki_sha256 = "))
        .expect("keys show prints the TLS pin")
        .to_string();
    format!(
        "[[gateway]]\nname = \"{name}\"\nura = \"{ura}\"\nurl = \"https://{}\"\nopenpgp = \"\"\"\n{}\"\"\"\ntls_spki_sha256 = {pin}\n",
        d.http,
        armored.trim_end()
    )
}
