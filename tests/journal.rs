//! The journal as an attacker with access to the files would cut it: records
//! cut from the front (and the file renamed to match), a segment removed,
//! the end of a segment cut off, a segment renamed. `pushgate audit verify`
//! names the records missing, `pushgate serve` and `pushgate reindex` refuse;
//! a head written down earlier (`--anchor`) shows a cut at the very end; the
//! head the daemon publishes is signed with the gateway's key (gpg, sq).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::sharing::{as_holder, bind, path_of, share};
use common::{Daemon, sample_files, text};

/// A stopped daemon whose journal holds real grants: three shares first,
/// then a bind and page views by the holder.
fn daemon_with_grants() -> Daemon {
    let mut daemon = Daemon::start();
    daemon.send_all(&sample_files()[..1]);
    let study = daemon.studies()[0]["study_uid"]
        .as_str()
        .unwrap()
        .to_string();
    let grants: Vec<_> = (0..3).map(|_| share(&daemon, &[&study])).collect();
    let path = path_of(&grants[0]["url"]);
    let holder = bind(&daemon, &path);
    for _ in 0..6 {
        assert_eq!(daemon.https("GET", &path, as_holder(&holder)).status, 200);
    }
    assert_eq!(daemon.stop(), Some(0));
    daemon
}

fn journal_dir(daemon: &Daemon) -> PathBuf {
    daemon.data_dir().join("journal")
}

fn segment(daemon: &Daemon, first: u64) -> PathBuf {
    journal_dir(daemon).join(format!("{first:020}.jsonl"))
}

/// The records of the journal's one segment, as lines.
fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Cuts the journal's one segment into segments starting at `starts`, as
/// rotation would have left them.
fn split(daemon: &Daemon, starts: &[u64]) {
    let lines = lines_of(&segment(daemon, 1));
    std::fs::remove_file(segment(daemon, 1)).unwrap();
    let mut bounds = starts.to_vec();
    bounds.push(lines.len() as u64 + 1);
    for pair in bounds.windows(2) {
        write_lines(
            &segment(daemon, pair[0]),
            &lines[(pair[0] - 1) as usize..(pair[1] - 1) as usize],
        );
    }
}

/// `audit verify` fails and names `missing`; serve and reindex refuse,
/// naming the records and the command that shows the rest.
fn assert_refused(daemon: &mut Daemon, missing: &str, case: &str) {
    let verify = daemon.cli(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1), "{case}: {}", text(&verify));
    assert!(
        text(&verify).contains(&format!("missing records: {missing}")),
        "{case}: {}",
        text(&verify)
    );
    let refused = daemon.spawn().expect_err(case);
    let wanted = match missing.split_once('-') {
        Some((from, to)) => format!("records {from}-{to} are missing"),
        None => format!("record {missing} is missing"),
    };
    assert!(
        refused.contains(&wanted) && refused.contains("pushgate audit verify"),
        "{case}: {refused}"
    );
    let reindex = daemon.cli(&["reindex"]);
    assert!(!reindex.status.success(), "{case}: {}", text(&reindex));
    assert!(
        text(&reindex).contains(&wanted) && text(&reindex).contains("pushgate audit verify"),
        "{case}: {}",
        text(&reindex)
    );
}

/// `SEQ:HASH` from `audit verify`'s `anchor:` line.
fn anchor_of(daemon: &Daemon) -> String {
    let verify = daemon.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    String::from_utf8_lossy(&verify.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("anchor: "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no anchor line: {}", text(&verify)))
        .to_string()
}

#[test]
fn records_cut_from_the_front_and_renamed_are_named_and_refused() {
    let mut daemon = daemon_with_grants();
    let lines = lines_of(&segment(&daemon, 1));
    let kinds: Vec<String> = lines[..3]
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]["type"].to_string())
        .collect();
    assert_eq!(kinds, ["\"grant_issued\""; 3], "{lines:?}");
    let verify = daemon.cli(&["audit", "verify"]);
    let head_before = String::from_utf8_lossy(&verify.stdout)
        .lines()
        .find(|l| l.starts_with("head: "))
        .unwrap_or_else(|| panic!("{}", text(&verify)))
        .to_string();

    // the attack of issue 12: the three grant_issued removed, the segment
    // renamed to start at record 4
    write_lines(&segment(&daemon, 1), &lines[3..]);
    std::fs::rename(segment(&daemon, 1), segment(&daemon, 4)).unwrap();
    let verify = daemon.cli(&["audit", "verify"]);
    assert!(
        !text(&verify).contains("journal intact") && !text(&verify).contains(&head_before),
        "{}",
        text(&verify)
    );
    assert!(
        text(&verify).contains("BROKEN at record 1"),
        "{}",
        text(&verify)
    );
    assert_refused(&mut daemon, "1-3", "front cut, renamed");
}

#[test]
fn every_kind_of_cut_is_named_and_refused() {
    let mut daemon = daemon_with_grants();
    let n = lines_of(&segment(&daemon, 1)).len() as u64;
    assert!(n >= 9, "{n} records");
    // three segments, as rotation leaves them: [1-3] [4-6] [7-n]
    split(&daemon, &[1, 4, 7]);
    let pristine = daemon.dir.path().join("journal.pristine");
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(journal_dir(&daemon))
            .arg(&pristine)
            .status()
            .unwrap()
            .success()
    );
    let restore = |daemon: &Daemon| {
        std::fs::remove_dir_all(journal_dir(daemon)).unwrap();
        assert!(
            Command::new("cp")
                .arg("-a")
                .arg(&pristine)
                .arg(journal_dir(daemon))
                .status()
                .unwrap()
                .success()
        );
    };
    let drop_lines = |path: &Path, keep: &dyn Fn(usize) -> bool| {
        let lines: Vec<String> = lines_of(path)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, l)| l)
            .collect();
        write_lines(path, &lines);
    };

    // the front of the first segment, name kept
    drop_lines(&segment(&daemon, 1), &|i| i >= 2);
    assert_refused(&mut daemon, "1-2", "front of the first segment");

    restore(&daemon);
    std::fs::remove_file(segment(&daemon, 1)).unwrap();
    assert_refused(&mut daemon, "1-3", "whole first segment");

    restore(&daemon);
    std::fs::remove_file(segment(&daemon, 4)).unwrap();
    assert_refused(&mut daemon, "4-6", "middle segment");

    restore(&daemon);
    drop_lines(&segment(&daemon, 4), &|i| i == 0);
    assert_refused(&mut daemon, "5-6", "end of a middle segment");

    // renamed, nothing cut: no record is missing, the name is wrong
    restore(&daemon);
    std::fs::rename(segment(&daemon, 4), segment(&daemon, 5)).unwrap();
    let verify = daemon.cli(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
    assert!(
        text(&verify).contains("named for record 5, but its first record is 4"),
        "{}",
        text(&verify)
    );
    let refused = daemon.spawn().unwrap_err();
    assert!(
        refused.contains("renamed") && refused.contains("pushgate audit verify"),
        "{refused}"
    );

    // the segments as rotation left them are a journal like any other
    restore(&daemon);
    assert!(daemon.cli(&["audit", "verify"]).status.success());
    daemon.spawn().unwrap();
    assert_eq!(daemon.stop(), Some(0));
    let out = daemon.cli(&["reindex"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("3 grant(s) rebuilt"), "{}", text(&out));
}

#[test]
fn an_anchor_shows_a_cut_at_the_end_and_a_rewrite() {
    let daemon = daemon_with_grants();
    let anchor = anchor_of(&daemon);
    let (seq, hash) = anchor.split_once(':').unwrap();
    let ok = daemon.cli(&["audit", "verify", "--anchor", &anchor]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("holds"), "{}", text(&ok));

    // the last two records cut off: the chain alone cannot tell
    let lines = lines_of(&segment(&daemon, 1));
    write_lines(&segment(&daemon, 1), &lines[..lines.len() - 2]);
    assert!(daemon.cli(&["audit", "verify"]).status.success());
    let cut = daemon.cli(&["audit", "verify", "--anchor", &anchor]);
    assert_eq!(cut.status.code(), Some(1), "{}", text(&cut));
    let seq: u64 = seq.parse().unwrap();
    assert!(
        text(&cut).contains(&format!(
            "the journal ends at record {}, records {}-{seq} were cut off",
            seq - 2,
            seq - 1
        )),
        "{}",
        text(&cut)
    );

    // a record that is there with another hash: rewritten
    let earlier = format!("{}:{hash}", seq - 2);
    let rewritten = daemon.cli(&["audit", "verify", "--anchor", &earlier]);
    assert_eq!(rewritten.status.code(), Some(1), "{}", text(&rewritten));
    assert!(
        text(&rewritten).contains("was rewritten"),
        "{}",
        text(&rewritten)
    );

    let bad = daemon.cli(&["audit", "verify", "--anchor", "12"]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("SEQ:HASH"), "{}", text(&bad));
}

#[test]
fn the_published_head_is_signed_and_verifies_with_gpg_and_sq() {
    let mut daemon = Daemon::start_with("[journal]\nhead_every = \"1s\"\n");
    let cert = daemon.dir.path().join("gateway.asc");
    let out = daemon.cli(&["keys", "show", "--armor"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&cert, &out.stdout).unwrap();
    daemon.send_all(&sample_files()[..1]);
    let study = daemon.studies()[0]["study_uid"]
        .as_str()
        .unwrap()
        .to_string();
    share(&daemon, &[&study]);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(daemon.stop(), Some(0));
    let log = daemon.log();
    for when in ["start", "periodic", "stop"] {
        assert!(
            log.lines().any(|l| l.contains("journal head")
                && l.contains(&format!("when=\"{when}\""))
                || l.contains("journal head") && l.contains(&format!("when={when}"))),
            "no {when} head in the log:\n{log}"
        );
    }

    // the file after the stop names the final head, as audit verify does
    let anchor = anchor_of(&daemon);
    let head_file = journal_dir(&daemon).join("head.asc");
    let signed = std::fs::read_to_string(&head_file).unwrap();
    assert!(
        signed.starts_with("-----BEGIN PGP SIGNED MESSAGE-----"),
        "{signed}"
    );
    let json_line = signed
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("the JSON in the clear");
    let head: serde_json::Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(head["head"], anchor.as_str(), "{signed}");
    assert_eq!(head["gateway_ura"], "00000000");
    assert!(
        log.contains(&anchor),
        "the stop line names the head:\n{log}"
    );

    // GnuPG
    let home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| {
        Command::new("gpg")
            .arg("--homedir")
            .arg(home.path())
            .args(["--batch", "--status-fd", "1", "--trust-model", "always"])
            .args(args)
            .output()
            .unwrap()
    };
    let import = gpg(&["--import", cert.to_str().unwrap()]);
    assert!(import.status.success(), "{}", text(&import));
    let verified = gpg(&["--verify", head_file.to_str().unwrap()]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("[GNUPG:] GOODSIG"),
        "{}",
        text(&verified)
    );
    // Sequoia, printing what it verified
    let sq = Command::new("sq")
        .args(["verify", "--signer-cert"])
        .arg(&cert)
        .arg(&head_file)
        .output()
        .unwrap();
    assert!(sq.status.success(), "{}", text(&sq));
    assert!(
        String::from_utf8_lossy(&sq.stdout).contains(&anchor),
        "{}",
        text(&sq)
    );

    // one changed digit and neither accepts it
    let forged_file = daemon.dir.path().join("forged.asc");
    let (seq, _) = anchor.split_once(':').unwrap();
    let forged = signed.replacen(
        &format!("\"seq\":{seq}"),
        &format!("\"seq\":{}", seq.parse::<u64>().unwrap() + 1),
        1,
    );
    assert_ne!(forged, signed);
    std::fs::write(&forged_file, forged).unwrap();
    assert!(
        !gpg(&["--verify", forged_file.to_str().unwrap()])
            .status
            .success()
    );
    let sq = Command::new("sq")
        .args(["verify", "--signer-cert"])
        .arg(&cert)
        .arg(&forged_file)
        .output()
        .unwrap();
    assert!(!sq.status.success(), "{}", text(&sq));
}

/// A journal written before the journal had record shapes of its own
/// (tests/data/journal/golden.jsonl: every kind of event, as the code at
/// cb795b0 wrote it) still verifies, opens, replays into the grants it
/// recorded, and takes new records after it.
#[test]
fn a_journal_written_before_its_own_record_shapes_verifies_and_replays() {
    let mut daemon = Daemon::prepare("");
    let dir = journal_dir(&daemon);
    std::fs::create_dir_all(&dir).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/journal/golden.jsonl");
    std::fs::copy(&golden, segment(&daemon, 1)).unwrap();
    let verify = daemon.cli(&["audit", "verify"]);
    assert!(
        verify.status.success() && text(&verify).contains("46 record(s)"),
        "{}",
        text(&verify)
    );

    daemon.spawn().expect("daemon starts on the old journal");
    let out = daemon.cli(&["grants", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let grants: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_id = |id: &str| {
        grants
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == id)
            .unwrap_or_else(|| panic!("grant {id} not replayed: {grants}"))
            .clone()
    };
    let full = by_id("g-full");
    assert_eq!(full["recipient"]["ura"], "12345678");
    assert_eq!(full["scope"]["exclude_modalities"][1], "SR");
    assert!(full["holder"].as_str().unwrap().contains("UZI 123456789"));
    assert_eq!(full["revoked"]["reason"], "wrong patient");
    // the first binding wins: the later token binding changed nothing
    let bare = by_id("g-bare");
    assert!(
        bare["holder"].as_str().unwrap().contains("CN=viewer"),
        "{bare}"
    );
    assert_eq!(bare["target"]["accession"]["number"], "ACC-0042");
    // issue 15's lines: a grant by accession names its patient and sender;
    // a study of another patient with the number is reported, not pinned
    let acc = by_id("g-acc");
    assert_eq!(acc["target"]["accession"]["patient_id"], "PAT-003", "{acc}");
    assert_eq!(acc["target"]["accession"]["source_ae"], "CT01", "{acc}");
    assert_eq!(acc["mismatches"][0]["study"], "1.2.3.97", "{acc}");
    assert!(
        acc["mismatches"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("PAT-009"),
        "{acc}"
    );
    // issue 14's lines: the issuer and the revoker as actors
    let actor = by_id("g-actor");
    assert_eq!(actor["issued_by"]["id"], "admin-token", "{actor}");
    assert_eq!(actor["revoked"]["by"], "J. de Vries", "{actor}");
    let org = by_id("g-org");
    assert!(org["holder"].is_null() && org["revoked"].is_null(), "{org}");
    assert!(
        org["legal_basis"].is_null() && org["patient"].is_null(),
        "{org}"
    );
    // the console's share: the legal basis and the patient as stored then
    let referral = by_id("g-referral");
    assert_eq!(referral["legal_basis"]["kind"], "referral", "{referral}");
    assert_eq!(referral["patient"]["bsn"], "999911120", "{referral}");
    let consent = by_id("g-consent");
    assert_eq!(
        consent["legal_basis"]["kind"], "explicit_consent",
        "{consent}"
    );
    assert!(
        consent["legal_basis"]["note"]
            .as_str()
            .unwrap()
            .contains("balie")
    );
    assert_eq!(consent["patient"]["name"], "de Boer^Piet", "{consent}");
    // a refusal, journaled by the new code after the old lines
    let refused = daemon.https(
        "GET",
        "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        Default::default(),
    );
    assert_eq!(refused.status, 404, "{refused:?}");
    assert_eq!(daemon.stop(), Some(0));

    let lines = lines_of(&segment(&daemon, 1));
    assert!(
        lines[46..].iter().any(|l| l.contains("\"unknown_token\"")),
        "{:?}",
        &lines[46..]
    );
    let old = std::fs::read_to_string(&golden).unwrap();
    assert!(lines.join("\n").starts_with(old.trim_end()));
    let verify = daemon.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}
