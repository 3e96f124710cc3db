//! The trees as the code before this seam wrote them (same names, keys and
//! values), so that an existing data_dir opens unchanged.

use super::*;
use crate::base::GrantId;
use crate::store::trees::ALL;
use crate::store::{Store, Uid};

fn db() -> sled::Db {
    sled::Config::new().temporary(true).open().unwrap()
}

#[test]
fn grants_are_read_and_written_where_they_always_were() {
    let db = db();
    // as authz wrote them: grant ID -> JSON, and the applied sequence
    // number as 8 bytes big endian
    db.open_tree("grants")
        .unwrap()
        .insert(b"g-old", br#"{"id":"g-old"}"#)
        .unwrap();
    db.open_tree("grants_meta")
        .unwrap()
        .insert(b"journal_applied_seq", &41u64.to_be_bytes())
        .unwrap();
    let grants = SledGrants::open(&db).unwrap();
    let (states, applied) = grants.load().unwrap();
    assert_eq!(states, vec![br#"{"id":"g-old"}"#.to_vec()]);
    assert_eq!(applied, 41);

    grants
        .save(&[(GrantId("g-new".into()), b"{}".to_vec())], 42)
        .unwrap();
    assert_eq!(
        db.open_tree("grants")
            .unwrap()
            .get(b"g-new")
            .unwrap()
            .unwrap(),
        b"{}"
    );
    assert_eq!(
        db.open_tree("grants_meta")
            .unwrap()
            .get(b"journal_applied_seq")
            .unwrap()
            .unwrap(),
        42u64.to_be_bytes()
    );
    grants.clear().unwrap();
    assert_eq!(grants.load().unwrap(), (vec![], 0));
}

#[test]
fn a_damaged_applied_number_is_an_error_not_zero() {
    let db = db();
    db.open_tree("grants_meta")
        .unwrap()
        .insert(b"journal_applied_seq", b"abc")
        .unwrap();
    let err = SledGrants::open(&db).unwrap().load().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

#[test]
fn the_inbox_keeps_receipts_and_origins_where_it_always_did() {
    let db = db();
    let old = Uid::parse("1.2.3").unwrap();
    db.open_tree("relay_received")
        .unwrap()
        .insert(b"12345678/p-old", b"kept")
        .unwrap();
    db.open_tree("relay_origins")
        .unwrap()
        .insert(b"1.2.3", b"origin")
        .unwrap();
    let inbox = SledInbox::open(&db).unwrap();
    assert_eq!(
        inbox.received("12345678/p-old").unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(inbox.origin(&old).unwrap().as_deref(), Some(&b"origin"[..]));
    assert_eq!(inbox.received("12345678/p-new").unwrap(), None);

    let new = [Uid::parse("1.2.4").unwrap(), Uid::parse("1.2.5").unwrap()];
    inbox
        .keep_received(&new, b"there", "12345678/p-new", b"receipt")
        .unwrap();
    let origins = db.open_tree("relay_origins").unwrap();
    assert_eq!(origins.get(b"1.2.5").unwrap().unwrap(), b"there");
    assert_eq!(
        db.open_tree("relay_received")
            .unwrap()
            .get(b"12345678/p-new")
            .unwrap()
            .unwrap(),
        b"receipt"
    );
}

#[test]
fn every_tree_the_store_opens_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::temporary(dir.path()).unwrap();
    let names: Vec<String> = store
        .db
        .tree_names()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .filter(|n| n != "__sled__default")
        .collect();
    // the index's trees and the relations beside it
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        assert!(
            ALL.contains(&name.as_str()),
            "tree {name} is not in trees::ALL"
        );
    }
}
