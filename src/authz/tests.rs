//! The decision point, end to end in memory: issue, bind, check, pass on,
//! revoke, redeem codes, replay from the journal.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::GrantsConfig;
use crate::journal::{self, DenyReason, Event, Journal};
use crate::store::{Store, Timestamp};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    authz: Authz,
}

fn config() -> GrantsConfig {
    GrantsConfig {
        default_ttl: Duration::from_secs(14 * 86400),
        max_ttl: Duration::from_secs(90 * 86400),
    }
}

fn open(dir: &Path, store: &Store) -> Authz {
    let journal = Journal::open(&dir.join("journal")).unwrap();
    Authz::open(
        store.grants.clone(),
        journal,
        store.index.clone(),
        &dir.join("authz.key"),
        config(),
        "https://gw.example".into(),
    )
    .unwrap()
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::temporary(dir.path()).unwrap();
    let authz = open(dir.path(), &store);
    Fixture {
        _dir: dir,
        store,
        authz,
    }
}

/// Who issues and revokes in these tests.
fn op() -> crate::journal::ActorRecord {
    crate::journal::ActorRecord {
        id: "local:operator".into(),
        name: "test operator".into(),
        role: "user".into(),
    }
}

fn request(shape: Shape) -> IssueRequest {
    IssueRequest {
        study_uid: Some("1.2.3".into()),
        accession: None,
        legal_basis: Some(crate::authz::LegalBasis::Referral),
        shape,
        ..IssueRequest::default()
    }
}

fn token_of<C>(issued: &Issued<C>) -> String {
    issued.url.rsplit('/').next().unwrap().to_string()
}

fn from(n: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, n])
}

fn anonymous() -> Credentials {
    Credentials::default()
}

fn with_token(token: &str) -> Credentials {
    Credentials {
        certificate: None,
        holder_token: Some(token.to_string()),
    }
}

fn uzi_cert(ura: &str, role: &str, uzi: &str) -> Credentials {
    Credentials {
        certificate: Some(CertIdentity {
            subject: format!("CN=test {uzi}"),
            spki_sha256: format!("{uzi:0>64}"),
            uzi: Uzi::parse(&format!(
                "2.16.528.1.1003.1.3.5.5.2-1-{uzi}-Z-{ura}-{role}-00000000"
            )),
        }),
        holder_token: None,
    }
}

fn caller(credentials: &Credentials, n: u8) -> Caller<'_> {
    Caller {
        credentials,
        from: from(n),
    }
}

#[test]
fn the_first_to_bind_holds_and_everyone_else_gets_the_same_answer() {
    let f = fixture();
    let issued = f
        .authz
        .issue(request(Shape::default()), &op(), "127.0.0.1")
        .unwrap();
    let token = token_of(&issued);
    let nobody = anonymous();
    // before binding: offered for binding, not readable
    assert!(matches!(
        f.authz.open_link(&token, caller(&nobody, 1)),
        Ok(Link::Unbound(_))
    ));
    assert!(matches!(
        f.authz
            .check(&token, caller(&nobody, 1), journal::AccessKind::Wado),
        Err(Denied::Neutral(_))
    ));
    let bound = f.authz.bind_link(&token, caller(&nobody, 1)).unwrap();
    let holder = with_token(bound.holder_token.as_deref().unwrap());
    assert!(
        f.authz
            .check(&token, caller(&holder, 1), journal::AccessKind::Wado)
            .is_ok()
    );
    // a second binder, a stranger, a forged holder token, an unknown token
    let other = anonymous();
    let denials = [
        f.authz.bind_link(&token, caller(&other, 2)).map(|_| ()),
        f.authz
            .check(&token, caller(&other, 2), journal::AccessKind::Wado)
            .map(|_| ()),
        f.authz
            .check(
                &token,
                caller(&with_token("forged"), 2),
                journal::AccessKind::Wado,
            )
            .map(|_| ()),
        f.authz
            .check(
                "unknown-token",
                caller(&holder, 2),
                journal::AccessKind::Wado,
            )
            .map(|_| ()),
    ];
    for denial in denials {
        assert!(matches!(denial, Err(Denied::Neutral(_))), "{denial:?}");
    }
}

#[test]
fn revoking_cuts_off_the_holder_and_every_grant_passed_on() {
    let f = fixture();
    let root = f
        .authz
        .issue(
            request(Shape {
                delegation_depth: Some(2),
                ..Shape::default()
            }),
            &op(),
            "127.0.0.1",
        )
        .unwrap();
    let root_token = token_of(&root);
    let holder = with_token(
        f.authz
            .bind_link(&root_token, caller(&anonymous(), 1))
            .unwrap()
            .holder_token
            .as_deref()
            .unwrap(),
    );
    let child = f
        .authz
        .delegate(&root_token, caller(&holder, 1), Shape::default())
        .unwrap();
    let child_token = token_of(&child);
    let child_holder = with_token(
        f.authz
            .bind_link(&child_token, caller(&anonymous(), 2))
            .unwrap()
            .holder_token
            .as_deref()
            .unwrap(),
    );
    let grandchild = f
        .authz
        .delegate(&child_token, caller(&child_holder, 2), Shape::default())
        .unwrap();
    assert!(
        f.authz
            .check(
                &child_token,
                caller(&child_holder, 2),
                journal::AccessKind::Wado
            )
            .is_ok()
    );
    // depth runs out: the grandchild may not be passed on
    let gc_token = token_of(&grandchild);
    let gc_holder = with_token(
        f.authz
            .bind_link(&gc_token, caller(&anonymous(), 3))
            .unwrap()
            .holder_token
            .as_deref()
            .unwrap(),
    );
    assert!(matches!(
        f.authz
            .delegate(&gc_token, caller(&gc_holder, 3), Shape::default()),
        Err(Denied::Invalid(_))
    ));

    let cascade = f
        .authz
        .revoke(&root.id, &op(), "wrong patient", "127.0.0.1")
        .unwrap();
    assert_eq!(cascade.len(), 2);
    for (token, who) in [
        (&root_token, &holder),
        (&child_token, &child_holder),
        (&gc_token, &gc_holder),
    ] {
        assert!(matches!(
            f.authz
                .check(token, caller(who, 9), journal::AccessKind::Wado),
            Err(Denied::Neutral(_))
        ));
    }
    let detail = f.authz.show(&child.id).unwrap();
    assert_eq!(detail.grant.status, "revoked");
    assert_eq!(detail.ancestors.len(), 1);
    assert_eq!(detail.descendants.len(), 1);
    assert!(
        f.authz
            .revoke(&root.id, &op(), "again", "127.0.0.1")
            .unwrap()
            .is_empty(),
        "idempotent"
    );
}

#[test]
fn a_child_cannot_widen_outlive_or_exceed_depth() {
    let f = fixture();
    let parent = f
        .authz
        .issue(
            request(Shape {
                series: vec!["1.2.3.1".into(), "1.2.3.2".into()],
                exclude_modalities: vec!["PR".into()],
                expires: Some("2d".into()),
                delegation_depth: Some(1),
                ..Shape::default()
            }),
            &op(),
            "127.0.0.1",
        )
        .unwrap();
    let token = token_of(&parent);
    let holder = with_token(
        f.authz
            .bind_link(&token, caller(&anonymous(), 1))
            .unwrap()
            .holder_token
            .as_deref()
            .unwrap(),
    );
    let tries = [
        Shape {
            series: vec!["1.2.3.9".into()],
            ..Shape::default()
        },
        Shape {
            expires: Some("3d".into()),
            ..Shape::default()
        },
        Shape {
            delegation_depth: Some(1),
            ..Shape::default()
        },
    ];
    for shape in tries {
        assert!(
            matches!(
                f.authz.delegate(&token, caller(&holder, 1), shape.clone()),
                Err(Denied::Invalid(_))
            ),
            "{shape:?}"
        );
    }
    // narrower is fine, and keeps the parent's exclusions
    let child = f
        .authz
        .delegate(
            &token,
            caller(&holder, 1),
            Shape {
                series: vec!["1.2.3.1".into()],
                expires: Some("1d".into()),
                ..Shape::default()
            },
        )
        .unwrap();
    let detail = f.authz.show(&child.id).unwrap();
    assert!(detail.grant.scope.exclude_modalities.contains("PR"));
    assert_eq!(detail.grant.delegation_depth, 0);
    assert!(detail.grant.expires_at <= parent.expires_at);
}

#[test]
fn codes_bind_once_report_typos_and_are_rate_limited() {
    let f = fixture();
    let issued = f
        .authz
        .issue(request(Shape::default()), &op(), "127.0.0.1")
        .unwrap();
    // a typo: caught by the check character, before any lookup
    let mut typo: Vec<char> = issued.code.chars().collect();
    typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    assert!(matches!(
        f.authz.redeem(&typo, caller(&anonymous(), 1)),
        Err(Denied::BadCode(_))
    ));
    // the right code binds and gives the redeemer its own URL
    let bound = f
        .authz
        .redeem(&issued.code.to_lowercase(), caller(&anonymous(), 1))
        .unwrap();
    let url_token = bound.url_token.clone().unwrap();
    let holder = with_token(bound.holder_token.as_deref().unwrap());
    assert!(
        f.authz
            .check(&url_token, caller(&holder, 1), journal::AccessKind::Page)
            .is_ok()
    );
    assert!(
        f.authz
            .check(
                &token_of(&issued),
                caller(&holder, 1),
                journal::AccessKind::Page
            )
            .is_ok()
    );
    // redeemed again by someone else: the neutral answer
    assert!(matches!(
        f.authz.redeem(&issued.code, caller(&anonymous(), 2)),
        Err(Denied::Neutral(_))
    ));
    // wrong codes with valid check characters: counted, then limited
    let mut limited = false;
    for _ in 0..10 {
        let (code, _) = secret::new_code();
        match f.authz.redeem(&code, caller(&anonymous(), 3)) {
            Err(Denied::Neutral(DenyReason::UnknownCode)) => {}
            Err(Denied::RateLimited(wait)) => {
                assert!(wait > Duration::ZERO);
                limited = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(limited, "ten wrong codes from one address were not limited");
    // another address is not held back by the first
    let (code, _) = secret::new_code();
    assert!(matches!(
        f.authz.redeem(&code, caller(&anonymous(), 4)),
        Err(Denied::Neutral(_))
    ));
}

#[test]
fn organization_grants_need_a_uzi_certificate_of_that_ura_and_role() {
    let f = fixture();
    let issued = f
        .authz
        .issue(
            request(Shape {
                to_ura: Some("90000380".into()),
                roles: vec!["01.039".into()],
                ..Shape::default()
            }),
            &op(),
            "127.0.0.1",
        )
        .unwrap();
    let token = token_of(&issued);
    for wrong in [
        anonymous(),
        uzi_cert("90000999", "01.039", "1111"),
        uzi_cert("90000380", "01.015", "2222"),
    ] {
        assert!(matches!(
            f.authz.bind_link(&token, caller(&wrong, 1)),
            Err(Denied::Neutral(_))
        ));
    }
    let radiologist = uzi_cert("90000380", "01.039", "3333");
    let bound = f.authz.bind_link(&token, caller(&radiologist, 1)).unwrap();
    assert!(bound.holder_token.is_none(), "bound to the certificate");
    assert!(
        f.authz
            .check(&token, caller(&radiologist, 1), journal::AccessKind::Wado)
            .is_ok()
    );
    // a colleague with the same URA and role is someone else
    let colleague = uzi_cert("90000380", "01.039", "4444");
    assert!(matches!(
        f.authz
            .check(&token, caller(&colleague, 1), journal::AccessKind::Wado),
        Err(Denied::Neutral(_))
    ));
}

#[test]
fn state_comes_back_from_the_journal_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::temporary(dir.path()).unwrap();
    let authz = open(dir.path(), &store);
    let issued = authz
        .issue(
            request(Shape {
                delegation_depth: Some(1),
                ..Shape::default()
            }),
            &op(),
            "127.0.0.1",
        )
        .unwrap();
    let token = token_of(&issued);
    let holder = with_token(
        authz
            .bind_link(&token, caller(&anonymous(), 1))
            .unwrap()
            .holder_token
            .as_deref()
            .unwrap(),
    );
    let child = authz
        .delegate(&token, caller(&holder, 1), Shape::default())
        .unwrap();
    authz.revoke(&child.id, &op(), "", "127.0.0.1").unwrap();
    authz.journal().close();
    drop(authz);
    drop(store);
    // a brand-new sled (the index was lost) and the journal
    let store = Store::temporary(dir.path()).unwrap();
    let rebuilt = Authz::rebuild(store.grants.clone(), &dir.path().join("journal")).unwrap();
    assert_eq!(rebuilt, 2);
    let authz = open(dir.path(), &store);
    assert!(
        authz
            .check(&token, caller(&holder, 1), journal::AccessKind::Wado)
            .is_ok()
    );
    assert_eq!(authz.show(&child.id).unwrap().grant.status, "revoked");
    // and every event is in the chain
    let report = journal::verify(&dir.path().join("journal")).unwrap();
    assert!(report.first_bad.is_none());
    let kinds: Vec<String> = journal::read(&dir.path().join("journal"), 1)
        .unwrap()
        .map(|r| {
            serde_json::to_value(&r.unwrap().0.event).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for kind in [
        "grant_issued",
        "grant_bound",
        "grant_delegated",
        "grant_revoked",
        "access",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
}

#[test]
fn expiry_cuts_off_and_is_journaled_once() {
    let f = fixture();
    let issued = f
        .authz
        .issue(request(Shape::default()), &op(), "127.0.0.1")
        .unwrap();
    // make it expire: rewrite its expiry through the state (as time would)
    {
        let mut state = f.authz.state.write().unwrap();
        state.by_id.get_mut(&issued.id).unwrap().grant.expires_at = Timestamp(1);
    }
    assert!(matches!(
        f.authz
            .open_link(&token_of(&issued), caller(&anonymous(), 1)),
        Err(Denied::Neutral(DenyReason::Expired))
    ));
    assert_eq!(f.authz.sweep(), 1);
    assert_eq!(f.authz.sweep(), 0);

    let expired = journal::read(f.authz.journal().dir(), 1)
        .unwrap()
        .filter(|r| matches!(r.as_ref().unwrap().0.event, Event::GrantExpired { .. }))
        .count();
    assert_eq!(expired, 1);
}

#[test]
fn issuing_checks_what_is_asked() {
    let f = fixture();
    let bad = [
        IssueRequest {
            study_uid: None,
            ..request(Shape::default())
        },
        IssueRequest {
            study_uid: Some("../x".into()),
            ..request(Shape::default())
        },
        request(Shape {
            to_ura: Some("123".into()),
            ..Shape::default()
        }),
        request(Shape {
            roles: vec!["01.039".into()],
            ..Shape::default()
        }),
        request(Shape {
            to_ura: Some("90000380".into()),
            roles: vec!["radioloog".into()],
            ..Shape::default()
        }),
        request(Shape {
            expires: Some("soon".into()),
            ..Shape::default()
        }),
        request(Shape {
            delegation_depth: Some(9),
            ..Shape::default()
        }),
    ];
    for req in bad {
        assert!(
            matches!(
                f.authz.issue(req.clone(), &op(), "127.0.0.1"),
                Err(AuthzError::Invalid(_))
            ),
            "{req:?}"
        );
    }
    // expiry is capped by grants.max_ttl
    let issued = f
        .authz
        .issue(
            request(Shape {
                expires: Some("400d".into()),
                ..Shape::default()
            }),
            &op(),
            "127.0.0.1",
        )
        .unwrap();
    assert!(issued.expires_at <= Timestamp::now().saturating_add(Duration::from_secs(90 * 86400)));
    // by accession, before the study exists
    let early = f
        .authz
        .issue(
            IssueRequest {
                study_uid: None,
                accession: Some("ACC123".into()),
                patient_id: Some("P123".into()),
                ..request(Shape::default())
            },
            &op(),
            "127.0.0.1",
        )
        .unwrap();
    assert_eq!(early.covers.state, "not arrived yet");
}

#[test]
fn a_uzi_only_grant_stays_within_its_organization_and_roles() {
    let f = fixture();
    let issued = f
        .authz
        .issue(
            request(Shape {
                to_ura: Some("90000380".into()),
                delegation_depth: Some(2),
                ..Shape::default()
            }),
            &op(),
            "127.0.0.1",
        )
        .unwrap();
    let token = token_of(&issued);
    let radiologist = uzi_cert("90000380", "01.039", "3333");
    f.authz.bind_link(&token, caller(&radiologist, 1)).unwrap();
    // to "anyone": refused; by default the child keeps the parent's recipient
    let widened = Shape {
        roles: vec![],
        to_ura: None,
        message: "x".into(),
        ..Shape::default()
    };
    let child = f
        .authz
        .delegate(&token, caller(&radiologist, 1), widened)
        .unwrap();
    let detail = f.authz.show(&child.id).unwrap();
    assert!(
        matches!(detail.grant.recipient, Recipient::Organization { ref ura, .. } if ura == "90000380")
    );
    // naming only a role keeps the organization; another organization,
    // "any role" of a role-bound grant, or another role is wider: 422
    let radiologists = Shape {
        roles: vec!["01.039".into()],
        ..Shape::default()
    };
    let other = f
        .authz
        .delegate(&token, caller(&radiologist, 1), radiologists)
        .unwrap();
    assert!(
        matches!(f.authz.show(&other.id).unwrap().grant.recipient, Recipient::Organization { ref ura, ref roles } if ura == "90000380" && roles == &["01.039"])
    );
    let elsewhere = Shape {
        to_ura: Some("90000999".into()),
        ..Shape::default()
    };
    match f.authz.delegate(&token, caller(&radiologist, 1), elsewhere) {
        Err(Denied::Invalid(reason)) => assert!(reason.contains("not to URA 90000999"), "{reason}"),
        other => panic!("another organization: {other:?}"),
    }
    let other_token = token_of(&other);
    let colleague = uzi_cert("90000380", "01.039", "4444");
    f.authz
        .bind_link(&other_token, caller(&colleague, 3))
        .unwrap();
    for (wider, expect) in [
        (
            Shape {
                to_ura: Some("90000380".into()),
                ..Shape::default()
            },
            "any role",
        ),
        (
            Shape {
                roles: vec!["01.015".into()],
                ..Shape::default()
            },
            "01.015",
        ),
    ] {
        match f.authz.delegate(&other_token, caller(&colleague, 3), wider) {
            Err(Denied::Invalid(reason)) => assert!(reason.contains(expect), "{reason}"),
            other => panic!("{expect}: {other:?}"),
        }
    }
    // and a holder token never binds either child
    for child in [&child, &other] {
        assert!(matches!(
            f.authz.bind_link(&token_of(child), caller(&anonymous(), 2)),
            Err(Denied::Neutral(_))
        ));
    }
}

fn study_entry(study: &str, accession: &str, at: u64) -> crate::store::IndexEntry {
    study_of(study, accession, "", at, crate::store::Source::Reindex)
}

/// An instance of `study` for patient `patient_id`, received at `at` (ms).
fn study_of(
    study: &str,
    accession: &str,
    patient_id: &str,
    at: u64,
    source: crate::store::Source,
) -> crate::store::IndexEntry {
    use crate::store::*;
    let uid = |s: &str| Uid::parse(s).unwrap();
    IndexEntry {
        key: InstanceKey {
            study: uid(study),
            series: uid(&format!("{study}.1")),
            sop: uid(&format!("{study}.1.1")),
        },
        patient: PatientAttrs {
            id: patient_id.into(),
            bsn: crate::ingest::normalize_bsn(patient_id),
            ..PatientAttrs::default()
        },
        study: StudyAttrs {
            accession_number: accession.into(),
            ..StudyAttrs::default()
        },
        series: SeriesAttrs {
            modality: "CT".into(),
            ..SeriesAttrs::default()
        },
        record: InstanceRecord {
            attrs: InstanceAttrs {
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
                ..InstanceAttrs::default()
            },
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            size: 1,
            mtime_ns: at,
            dataset_offset: 0,
            crc32: None,
            received_at: Timestamp(at),
            source,
            layout: BulkLayout::default(),
        },
        metadata_json: b"{}".to_vec(),
    }
}

/// Accession numbers are unique per RIS, not across the CDs and foreign
/// studies a department imports: a grant by accession names the patient
/// and pins only to that patient's study arriving after the grant; every
/// other study with the number is reported to the issuer, never served.
#[test]
fn a_grant_by_accession_pins_only_to_its_patients_study_arriving_after_it() {
    let f = fixture();
    let by_accession = |patient_id: Option<&str>, bsn: Option<&str>, source_ae: Option<&str>| {
        f.authz.issue(
            IssueRequest {
                study_uid: None,
                accession: Some("ACC7".into()),
                patient_id: patient_id.map(str::to_string),
                bsn: bsn.map(str::to_string),
                source_ae: source_ae.map(str::to_string),
                ..request(Shape::default())
            },
            &op(),
            "127.0.0.1",
        )
    };
    // without a patient: refused, nothing issued
    let refused = by_accession(None, None, None).unwrap_err().to_string();
    assert!(refused.contains("patient_id or bsn"), "{refused}");
    assert!(
        by_accession(None, Some("123456780"), None).is_err(),
        "not a BSN"
    );
    assert!(by_accession(Some("P1"), None, Some("AE-TITLE-TOO-LONG-17")).is_err());
    // an old study of the same patient and number, here before the grant
    let now = Timestamp::now().0;
    let old = study_of(
        "1.7.0",
        "ACC7",
        "P1",
        now - 60_000,
        crate::store::Source::Reindex,
    );
    f.store.index.put_instance(&old).unwrap();
    let issued = by_accession(Some("P1"), None, None).unwrap();
    assert_eq!(issued.covers.state, "not arrived yet");
    let dimse = |ae: &str| crate::store::Source::Dimse {
        calling_ae: ae.into(),
        peer: "127.0.0.1:1".into(),
    };
    // arriving after it: first another patient's study, then the right one
    let other = study_of("1.7.2", "ACC7", "P2", now + 1_000, dimse("CT01"));
    let right = study_of("1.7.1", "ACC7", "P1", now + 2_000, dimse("CT01"));
    f.store.index.put_instance(&other).unwrap();
    f.store.index.put_instance(&right).unwrap();
    f.authz.resolve_accessions();
    let shown = f.authz.show(&issued.id).unwrap();
    assert_eq!(shown.covers.study_uid.as_deref(), Some("1.7.1"));
    let reasons: Vec<(String, String)> = shown
        .grant
        .mismatches
        .iter()
        .map(|m| (m.study.to_string(), m.reason.clone()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|(s, r)| s == "1.7.2" && r.contains("\"P2\", not \"P1\"")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(s, r)| s == "1.7.0" && r.contains("before the share")),
        "{reasons:?}"
    );
    let token = token_of(&issued);
    let holder = with_token(
        f.authz
            .bind_link(&token, caller(&anonymous(), 1))
            .unwrap()
            .holder_token
            .as_deref()
            .unwrap(),
    );
    let grant = f
        .authz
        .check(&token, caller(&holder, 1), journal::AccessKind::Wado)
        .unwrap()
        .grant;
    let study = |e: &crate::store::IndexEntry| f.store.index.study(&e.key.study).unwrap().unwrap();
    for (entry, covered) in [(&right, true), (&other, false), (&old, false)] {
        assert_eq!(
            grant.covers_instance(&study(entry), &entry.key, &entry.record.attrs.sop_class_uid),
            covered,
            "{}",
            entry.key.study
        );
    }
    // a later namesake of the same patient changes nothing
    f.store
        .index
        .put_instance(&study_of("1.7.3", "ACC7", "P1", now + 3_000, dimse("CT01")))
        .unwrap();
    f.authz.resolve_accessions();
    assert_eq!(
        f.authz
            .show(&issued.id)
            .unwrap()
            .covers
            .study_uid
            .as_deref(),
        Some("1.7.1")
    );
    // the mismatches are journaled once each, for the audit
    let journaled = journal::read(f.authz.journal().dir(), 1)
        .unwrap()
        .filter(|r| {
            matches!(&r.as_ref().unwrap().0.event,
                Event::GrantMismatch { grant, .. } if grant == &issued.id)
        })
        .count();
    assert_eq!(journaled, 2);

    // by BSN and sending AE: the right patient from another AE is not it
    let bsn = "999999990"; // passes the 11-proof
    let by_bsn = by_accession(None, Some(bsn), Some("CT01")).unwrap();
    f.store
        .index
        .put_instance(&study_of(
            "1.8.1",
            "ACC7",
            bsn,
            now + 4_000,
            dimse("IMPORT"),
        ))
        .unwrap();
    f.store
        .index
        .put_instance(&study_of("1.8.2", "ACC7", bsn, now + 5_000, dimse("CT01")))
        .unwrap();
    f.authz.resolve_accessions();
    let shown = f.authz.show(&by_bsn.id).unwrap();
    assert_eq!(shown.covers.study_uid.as_deref(), Some("1.8.2"));
    assert!(
        shown
            .grant
            .mismatches
            .iter()
            .any(|m| m.study.to_string() == "1.8.1"
                && m.reason.contains("sent by dicom:IMPORT, not only by CT01")),
        "{:?}",
        shown.grant.mismatches
    );
}

#[test]
fn of_two_first_uses_at_once_exactly_one_binds() {
    let f = Arc::new(fixture());
    let issued = f
        .authz
        .issue(request(Shape::default()), &op(), "127.0.0.1")
        .unwrap();
    let token = token_of(&issued);
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let (f, token) = (f.clone(), token.clone());
            std::thread::spawn(move || {
                f.authz
                    .bind_link(&token, caller(&anonymous(), n))
                    .ok()
                    .and_then(|b| b.holder_token)
            })
        })
        .collect();
    let winners: Vec<String> = threads
        .into_iter()
        .filter_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
}

#[test]
fn a_child_dies_with_its_expired_parent() {
    let f = fixture();
    let parent = f
        .authz
        .issue(
            request(Shape {
                delegation_depth: Some(1),
                ..Shape::default()
            }),
            &op(),
            "127.0.0.1",
        )
        .unwrap();
    let token = token_of(&parent);
    let holder = with_token(
        f.authz
            .bind_link(&token, caller(&anonymous(), 1))
            .unwrap()
            .holder_token
            .as_deref()
            .unwrap(),
    );
    let child = f
        .authz
        .delegate(&token, caller(&holder, 1), Shape::default())
        .unwrap();
    let child_token = token_of(&child);
    let child_holder = with_token(
        f.authz
            .bind_link(&child_token, caller(&anonymous(), 2))
            .unwrap()
            .holder_token
            .as_deref()
            .unwrap(),
    );
    f.authz
        .state
        .write()
        .unwrap()
        .by_id
        .get_mut(&parent.id)
        .unwrap()
        .grant
        .expires_at = Timestamp(1);
    assert_eq!(
        f.authz
            .check(
                &child_token,
                caller(&child_holder, 2),
                journal::AccessKind::Wado
            )
            .unwrap_err(),
        Denied::Neutral(DenyReason::AncestorExpired)
    );
    assert_eq!(f.authz.show(&child.id).unwrap().grant.status, "expired");
}

/// What a replay of the journal builds is what the live path built, down
/// to the times.
#[test]
fn replayed_state_equals_live_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::temporary(dir.path()).unwrap();
    let authz = open(dir.path(), &store);
    let a = authz
        .issue(
            request(Shape {
                delegation_depth: Some(1),
                ..Shape::default()
            }),
            &op(),
            "127.0.0.1",
        )
        .unwrap();
    let holder = with_token(
        authz
            .bind_link(&token_of(&a), caller(&anonymous(), 1))
            .unwrap()
            .holder_token
            .as_deref()
            .unwrap(),
    );
    let child = authz
        .delegate(&token_of(&a), caller(&holder, 1), Shape::default())
        .unwrap();
    authz.redeem(&child.code, caller(&anonymous(), 2)).unwrap();
    let b = authz
        .issue(request(Shape::default()), &op(), "127.0.0.1")
        .unwrap();
    authz.revoke(&b.id, &op(), "test", "127.0.0.1").unwrap();
    let snapshot = |authz: &Authz| {
        let state = authz.read();
        let mut all: Vec<String> = state
            .by_id
            .values()
            .map(|g| serde_json::to_string(g).unwrap())
            .collect();
        all.sort();
        all
    };
    let live = snapshot(&authz);
    authz.journal().close();
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = Store::temporary(fresh_dir.path()).unwrap();
    let replayed = Authz::open(
        fresh.grants.clone(),
        Journal::open(&dir.path().join("journal")).unwrap(),
        fresh.index.clone(),
        &dir.path().join("authz.key"),
        config(),
        "https://gw.example".into(),
    )
    .unwrap();
    assert_eq!(snapshot(&replayed), live);
}

/// A crash in the middle of writing a record with non-ASCII text leaves a
/// line cut inside a character: it is cut off, and reindex works.
#[test]
fn a_torn_line_cut_inside_a_character_is_repaired() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::temporary(dir.path()).unwrap();
    let authz = open(dir.path(), &store);
    authz
        .issue(
            request(Shape {
                message: "verwijzing naar dr. Müller".into(),
                ..Shape::default()
            }),
            &op(),
            "127.0.0.1",
        )
        .unwrap();
    authz.journal().close();
    let segment = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let line = std::fs::read(&segment).unwrap();
    let cut = line.iter().position(|b| *b == 0xC3).unwrap() + 1;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap()
        .write_all(&line[..cut])
        .unwrap();
    let fresh = Store::temporary(tempfile::tempdir().unwrap().path()).unwrap();
    assert_eq!(
        Authz::rebuild(fresh.grants.clone(), &dir.path().join("journal")).unwrap(),
        1
    );
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    assert_eq!(journal.opened_at.0, 1);
    journal.close();
    assert_eq!(std::fs::read(&segment).unwrap(), line);
}

#[test]
fn a_journal_shorter_than_the_applied_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::temporary(dir.path()).unwrap();
    let authz = open(dir.path(), &store);
    authz
        .issue(request(Shape::default()), &op(), "127.0.0.1")
        .unwrap();
    authz
        .issue(request(Shape::default()), &op(), "127.0.0.1")
        .unwrap();
    authz.journal().close();
    drop(authz);
    let segment = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&segment).unwrap();
    std::fs::write(&segment, text.lines().next().unwrap().to_string() + "\n").unwrap();
    let result = Authz::open(
        store.grants.clone(),
        Journal::open(&dir.path().join("journal")).unwrap(),
        store.index.clone(),
        &dir.path().join("authz.key"),
        config(),
        "https://gw.example".into(),
    );
    assert!(
        matches!(
            result,
            Err(AuthzError::JournalShorter {
                journal: 1,
                applied: 2
            })
        ),
        "{:?}",
        result.err()
    );
}

/// Retention marks a study before it is gone: a push found by the last
/// look keeps it, and while it is marked no grant can be issued for it.
#[test]
fn a_study_being_deleted_takes_no_new_grant() {
    let f = fixture();
    let entry = study_entry("1.8.1", "ACC8", 1000);
    f.store.index.put_instance(&entry).unwrap();
    let study = f.store.index.study(&entry.key.study).unwrap().unwrap();
    let deleted = || journal::Event::StudyDeleted {
        study: study.study_uid.clone(),
        reason: "retention.max_age".into(),
        instances: 1,
        bytes: 1,
    };
    // The last look finds a push: nothing is journaled, no mark stays.
    assert!(
        !f.authz
            .record_deletion(&study, deleted(), || false)
            .unwrap()
    );
    assert!(!f.authz.is_deleting(&study.study_uid));
    f.authz
        .issue(
            IssueRequest {
                study_uid: Some("1.8.1".into()),
                ..request(Shape::default())
            },
            &op(),
            "127.0.0.1",
        )
        .expect("not marked: shared as usual");

    let f = fixture();
    f.store.index.put_instance(&entry).unwrap();
    assert!(f.authz.record_deletion(&study, deleted(), || true).unwrap());
    assert!(f.authz.is_deleting(&study.study_uid));
    let refused = f.authz.issue(
        IssueRequest {
            study_uid: Some("1.8.1".into()),
            ..request(Shape::default())
        },
        &op(),
        "127.0.0.1",
    );
    assert!(
        matches!(&refused, Err(AuthzError::Invalid(m)) if m.contains("being deleted")),
        "{:?}",
        refused.map(|i| i.id)
    );
    f.authz.deletion_done(&study.study_uid);
    assert!(!f.authz.is_deleting(&study.study_uid));
}

#[test]
fn failed_admin_authentication_is_limited_per_address_and_journaled() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.token");
    let token = AdminToken::load_or_create(&path).unwrap();
    let right = format!("Bearer {}", read_token(&path).unwrap());
    let right = Some(right.as_bytes());
    assert!(f.authz.admit_admin(&token, right, from(1)).is_ok());
    for _ in 0..10 {
        assert_eq!(
            f.authz.admit_admin(&token, Some(b"Bearer wrong"), from(1)),
            Err(Denied::Neutral(DenyReason::UnknownToken))
        );
    }
    // limited now, the right token too; another address is not
    assert!(matches!(
        f.authz.admit_admin(&token, right, from(1)),
        Err(Denied::RateLimited(wait)) if wait > Duration::from_secs(1)
    ));
    assert_eq!(
        f.authz.admit_admin(&token, None, from(2)),
        Err(Denied::Neutral(DenyReason::NoCredential))
    );
    assert!(f.authz.admit_admin(&token, right, from(3)).is_ok());
    // journaled as refusals of `admin`, successes not
    let journal = f.authz.journal();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while journal.lag() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let refused: Vec<DenyReason> = journal::read(journal.dir(), 1)
        .unwrap()
        .filter_map(|r| match r.unwrap().0.event {
            Event::Access(a) if a.what == journal::AccessKind::Admin => match a.outcome {
                journal::Outcome::Denied(reason) => Some(reason),
                journal::Outcome::Allowed => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 12, "{refused:?}");
    assert_eq!(refused[10], DenyReason::RateLimited);
}

/// Every grant an operator issues says why it may be shared; without a
/// basis (or with consent but no note of it) nothing is issued. The
/// journal keeps the basis and the patient as the index had them, and a
/// grant passed on carries its parent's.
#[test]
fn a_grant_carries_its_legal_basis_and_the_patient_as_stored() {
    let f = fixture();
    let mut entry = study_entry("1.9.1", "ACC9", 1000);
    entry.patient = crate::store::PatientAttrs {
        name: "Jansen^Anna".into(),
        id: "PAT-9".into(),
        issuer: "ZKH".into(),
        birth_date: "19700101".into(),
        sex: "F".into(),
        bsn: Some("999911120".into()),
    };
    f.store.index.put_instance(&entry).unwrap();
    let ask = |basis: Option<LegalBasis>| IssueRequest {
        study_uid: Some("1.9.1".into()),
        legal_basis: basis,
        shape: Shape {
            delegation_depth: Some(1),
            ..Shape::default()
        },
        ..request(Shape::default())
    };
    for (basis, reason) in [
        (None, "legal_basis is required"),
        (
            Some(LegalBasis::ExplicitConsent { note: "  ".into() }),
            "who consented",
        ),
    ] {
        let refused = f.authz.issue(ask(basis), &op(), "127.0.0.1");
        assert!(
            matches!(&refused, Err(AuthzError::Invalid(m)) if m.contains(reason)),
            "{:?}",
            refused.err()
        );
    }
    assert!(f.authz.list().is_empty(), "nothing issued");

    let consent = LegalBasis::ExplicitConsent {
        note: " mevrouw Jansen, mondeling aan de balie ".into(),
    };
    let issued = f
        .authz
        .issue(ask(Some(consent)), &op(), "127.0.0.1")
        .unwrap();
    let view = f.authz.show(&issued.id).unwrap().grant;
    assert_eq!(
        view.legal_basis,
        Some(LegalBasis::ExplicitConsent {
            note: "mevrouw Jansen, mondeling aan de balie".into()
        })
    );
    let patient = view.patient.clone().unwrap();
    assert_eq!(
        (patient.id.as_str(), patient.bsn.as_deref()),
        ("PAT-9", Some("999911120"))
    );
    assert_eq!(issued.enter_code_at, "https://gw.example/");

    let token = token_of(&issued);
    let holder = with_token(
        f.authz
            .bind_link(&token, caller(&anonymous(), 1))
            .unwrap()
            .holder_token
            .as_deref()
            .unwrap(),
    );
    let child = f
        .authz
        .delegate(&token, caller(&holder, 1), Shape::default())
        .unwrap();
    let child = f.authz.show(&child.id).unwrap().grant;
    assert_eq!(child.legal_basis, view.legal_basis);
    assert_eq!(child.patient, view.patient);

    let line = journal::read(f.authz.journal().dir(), 1)
        .unwrap()
        .map(|r| r.unwrap().0)
        .find(|r| matches!(r.event, Event::GrantIssued { .. }))
        .unwrap();
    let json = serde_json::to_value(&line.event).unwrap();
    assert_eq!(json["legal_basis"]["kind"], "explicit_consent", "{json}");
    assert_eq!(json["patient"]["name"], "Jansen^Anna", "{json}");
    assert_eq!(json["by"]["id"], "local:operator", "{json}");
}

/// The per-account login limit is keyed by the name cut to the longest a
/// name may be: 64 KiB names with different tails cost one key, and are
/// limited like one account.
#[test]
fn login_limits_key_names_no_longer_than_a_name() {
    let f = fixture();
    let from: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let prefix = "a".repeat(64);
    for i in 0..5 {
        let name = format!("{prefix}{}", "x".repeat(65536 + i));
        assert!(f.authz.staff_login_may_try(&name, from).is_ok(), "{i}");
        // from another address each time: only the account's limit counts
        let elsewhere: std::net::IpAddr = format!("192.0.2.{}", 100 + i).parse().unwrap();
        f.authz
            .staff_login_failed(&name, "local", "no such account", elsewhere);
    }
    assert!(f.authz.staff_login_may_try(&prefix, from).is_err());
    assert!(f.authz.staff_login_may_try("someone-else", from).is_ok());
}

/// A grant by accession passed on covers its root's study: before the
/// root is pinned (it follows the pin) and after (a later study with the
/// same number and patient is not the child's). And a study pinned by
/// its patient stops being served when a later instance says another.
#[test]
fn an_accession_grant_passed_on_covers_its_roots_study_and_only_while_it_is_the_patients() {
    let f = fixture();
    let now = Timestamp::now().0;
    let dimse = crate::store::Source::Dimse {
        calling_ae: "CT01".into(),
        peer: "127.0.0.1:1".into(),
    };
    let root = f
        .authz
        .issue(
            IssueRequest {
                study_uid: None,
                accession: Some("ACC9".into()),
                patient_id: Some("P9".into()),
                ..request(Shape {
                    delegation_depth: Some(2),
                    ..Shape::default()
                })
            },
            &op(),
            "127.0.0.1",
        )
        .unwrap();
    let holder = with_token(
        f.authz
            .bind_link(&token_of(&root), caller(&anonymous(), 1))
            .unwrap()
            .holder_token
            .as_deref()
            .unwrap(),
    );
    let passed_on = |n: u8| {
        f.authz
            .delegate(&token_of(&root), caller(&holder, 1), Shape::default())
            .unwrap_or_else(|e| panic!("delegation {n}: {e:?}"))
    };
    let early = passed_on(1);
    let first = study_of("1.9.1", "ACC9", "P9", now + 1_000, dimse.clone());
    f.store.index.put_instance(&first).unwrap();
    f.authz.resolve_accessions();
    let late = passed_on(2);
    let second = study_of("1.9.2", "ACC9", "P9", now + 2_000, dimse.clone());
    f.store.index.put_instance(&second).unwrap();
    f.authz.resolve_accessions();
    for id in [&root.id, &early.id, &late.id] {
        assert_eq!(
            f.authz.show(id).unwrap().covers.study_uid.as_deref(),
            Some("1.9.1"),
            "{id}"
        );
    }
    // the holder's view names the number, never whose it is
    let seen = serde_json::to_string(&f.authz.show(&late.id).unwrap().covers).unwrap();
    assert!(
        seen.contains("P9"),
        "the sender's view has the patient: {seen}"
    );
    let holder_view = crate::authz::HolderCoverage::from(f.authz.show(&late.id).unwrap().covers);
    let json = serde_json::to_value(&holder_view).unwrap();
    assert_eq!(
        json["target"],
        serde_json::json!({"accession": {"number": "ACC9"}})
    );

    // a later instance of the pinned study carries another patient: the
    // index's study patient changes, and nothing of it is served any more
    let grant = f.authz.grant_state(&root.id).unwrap();
    let study = |e: &crate::store::IndexEntry| f.store.index.study(&e.key.study).unwrap().unwrap();
    assert!(grant.covers_instance(
        &study(&first),
        &first.key,
        &first.record.attrs.sop_class_uid
    ));
    let mut other = study_of("1.9.1", "ACC9", "P-OTHER", now + 3_000, dimse);
    other.key.sop = crate::store::Uid::parse("1.9.1.1.2").unwrap();
    f.store.index.put_instance(&other).unwrap();
    assert!(!grant.covers_instance(
        &study(&first),
        &first.key,
        &first.record.attrs.sop_class_uid
    ));
}

/// A sender reusing an awaited number cannot fill the journal: each grant
/// reports at most so many studies that are not its own.
#[test]
fn mismatches_per_grant_are_bounded() {
    let f = fixture();
    let now = Timestamp::now().0;
    let issued = f
        .authz
        .issue(
            IssueRequest {
                study_uid: None,
                accession: Some("FLOOD".into()),
                patient_id: Some("P1".into()),
                ..request(Shape::default())
            },
            &op(),
            "127.0.0.1",
        )
        .unwrap();
    for i in 0..30u64 {
        let entry = study_of(
            &format!("1.10.{i}"),
            "FLOOD",
            &format!("X{i}"),
            now + 1_000 + i,
            crate::store::Source::Reindex,
        );
        f.store.index.put_instance(&entry).unwrap();
        f.authz.resolve_accessions();
    }
    assert_eq!(f.authz.show(&issued.id).unwrap().grant.mismatches.len(), 20);
}
