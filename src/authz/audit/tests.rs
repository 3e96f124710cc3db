//! The audit format against lines the code wrote before the journal had
//! shapes of its own (tests/data/journal/golden.jsonl, written at cb795b0
//! from `Grant`'s serde derive): every kind of event, built from authz's
//! types, must read back from those lines as the same record and seal to
//! the same bytes. A change to `Grant` that would change what is journaled
//! fails here. Lines 30–37 were added with issue 14 (who issued and
//! revoked, the console's events), lines 38–40 with its share (the legal
//! basis and the patient on a grant), lines 41–44 with its outbox and audit
//! (who sent, retried, cancelled; who read the audit); the lines before
//! stayed byte for byte.

use crate::authz::{CertIdentity, Grant, GrantId, Holder, Recipient, Scope, Target, Uzi};
use crate::journal::{
    Access, AccessKind, ActorRecord, BindVia, ConsoleEvent, DenyReason, Event, GrantRecord,
    HolderRecord, LegalBasisRecord, Outcome, PatientRecord, Relay, Who, seal,
};
use crate::store::{Timestamp, Uid};

const GOLDEN: &str = include_str!("../../../tests/data/journal/golden.jsonl");

fn uid(s: &str) -> Uid {
    Uid::parse(s).unwrap()
}
fn gid(s: &str) -> GrantId {
    GrantId(s.to_string())
}

fn full_grant() -> Grant {
    Grant {
        id: gid("g-full"),
        target: Target::Study(uid("1.2.826.0.1.3680043.8.498.1")),
        scope: Scope {
            series: Some([uid("1.2.3.4"), uid("1.2.3.5")].into_iter().collect()),
            exclude_modalities: ["PR".to_string(), "SR".to_string()].into_iter().collect(),
            exclude_sop_classes: ["1.2.840.10008.5.1.4.1.1.11.1".to_string()]
                .into_iter()
                .collect(),
        },
        issuer: "admin (token)".into(),
        recipient: Recipient::Organization {
            ura: "12345678".into(),
            roles: vec!["01.039".into(), "01.010".into()],
        },
        created_at: Timestamp(1_780_000_000_000),
        expires_at: Timestamp(1_780_604_800_123),
        message: "Graag beoordelen, \"spoed\" <b>é</b>".into(),
        delegation_depth: 2,
        parent: Some(gid("g-parent")),
        token_hash: "a".repeat(64),
        code_hash: "b".repeat(64),
    }
}

fn bare_grant() -> Grant {
    Grant {
        id: gid("g-bare"),
        target: Target::Accession(crate::authz::Awaited {
            number: "ACC-0042".into(),
            patient_id: None,
            bsn: None,
            source_ae: None,
        }),
        scope: Scope::default(),
        issuer: "ops".into(),
        recipient: Recipient::Anyone,
        created_at: Timestamp(1_780_000_000_000),
        expires_at: Timestamp(1_780_000_600_000),
        message: String::new(),
        delegation_depth: 0,
        parent: None,
        token_hash: "c".repeat(64),
        code_hash: "d".repeat(64),
    }
}

fn events() -> Vec<Event> {
    let uzi_cert = CertIdentity {
        subject: "CN=Dr. A. Arts,O=Ziekenhuis".into(),
        spki_sha256: "e".repeat(64),
        uzi: Some(Uzi {
            ca_oid: "2.16.528.1.1003.1.3.5.5.2".into(),
            version: "1".into(),
            uzi_number: "123456789".into(),
            pass_type: "Z".into(),
            ura: "12345678".into(),
            role: "01.039".into(),
            agb: "00000000".into(),
        }),
    };
    let cert = CertIdentity {
        subject: "CN=viewer".into(),
        spki_sha256: "f".repeat(64),
        uzi: None,
    };
    let org_norole = Grant {
        id: gid("g-org"),
        recipient: Recipient::Organization {
            ura: "87654321".into(),
            roles: vec![],
        },
        target: Target::Study(uid("1.2.3")),
        ..bare_grant()
    };
    vec![
        Event::GrantIssued {
            grant: GrantRecord::from(&full_grant()),
            from: "192.0.2.1 (admin token)".into(),
            by: None,
            legal_basis: None,
            patient: None,
        },
        Event::GrantIssued {
            grant: GrantRecord::from(&bare_grant()),
            from: String::new(),
            by: None,
            legal_basis: None,
            patient: None,
        },
        Event::GrantIssued {
            grant: GrantRecord::from(&org_norole),
            from: "::1".into(),
            by: None,
            legal_basis: None,
            patient: None,
        },
        Event::GrantDelegated {
            grant: GrantRecord::from(&full_grant()),
            by: Who::Certificate {
                identity: "UZI 123456789".into(),
            },
            from: "192.0.2.2".into(),
        },
        Event::GrantDelegated {
            grant: GrantRecord::from(&bare_grant()),
            by: Who::HolderToken {
                hash_prefix: "abcdef012345".into(),
            },
            from: "192.0.2.3".into(),
        },
        Event::GrantBound {
            grant: gid("g-full"),
            holder: HolderRecord::from(&Holder::Certificate(uzi_cert)),
            via: BindVia::Url,
            from: "192.0.2.4".into(),
            alias: None,
        },
        Event::GrantBound {
            grant: gid("g-bare"),
            holder: HolderRecord::from(&Holder::Certificate(cert)),
            via: BindVia::Code,
            from: "192.0.2.5".into(),
            alias: Some("9".repeat(64)),
        },
        Event::GrantBound {
            grant: gid("g-bare"),
            holder: HolderRecord::from(&Holder::Token {
                hash: "7".repeat(64),
            }),
            via: BindVia::Code,
            from: "192.0.2.6".into(),
            alias: None,
        },
        Event::GrantRevoked {
            grant: gid("g-full"),
            by: "admin".into(),
            reason: "wrong patient".into(),
            cascade: vec![gid("g-c1"), gid("g-c2")],
            from: "192.0.2.7".into(),
            actor: None,
        },
        Event::GrantRevoked {
            grant: gid("g-bare"),
            by: "admin".into(),
            reason: String::new(),
            cascade: vec![],
            from: String::new(),
            actor: None,
        },
        Event::GrantExpired {
            grant: gid("g-bare"),
        },
        Event::GrantResolved {
            grant: gid("g-bare"),
            study: uid("1.2.3.99"),
            patient: None,
        },
        Event::Access(Access {
            grant: Some(gid("g-full")),
            study: Some(uid("1.2.3")),
            what: AccessKind::Wado,
            who: Who::Certificate {
                identity: "UZI 123456789".into(),
            },
            from: "192.0.2.8".into(),
            outcome: Outcome::Allowed,
            instances: 12,
            bytes: 123_456,
        }),
        Event::Access(Access {
            grant: None,
            study: None,
            what: AccessKind::Redeem,
            who: Who::Anonymous,
            from: "192.0.2.9".into(),
            outcome: Outcome::Denied(DenyReason::UnknownCode),
            instances: 0,
            bytes: 0,
        }),
        Event::Access(Access {
            grant: Some(gid("g-bare")),
            study: None,
            what: AccessKind::Admin,
            who: Who::HolderToken {
                hash_prefix: "0123".into(),
            },
            from: "192.0.2.10".into(),
            outcome: Outcome::Denied(DenyReason::AncestorRevoked),
            instances: 0,
            bytes: 0,
        }),
        Event::Relay(Relay::Queued {
            outbox: "o1".into(),
            study: uid("1.2.3"),
            to_ura: "87654321".into(),
            priority: "urgent".into(),
            by: "admin".into(),
            grant: Some(gid("g-full")),
            actor: None,
        }),
        Event::Relay(Relay::Queued {
            outbox: "o2".into(),
            study: uid("1.2.3"),
            to_ura: "87654321".into(),
            priority: "routine".into(),
            by: "cli".into(),
            grant: None,
            actor: None,
        }),
        Event::Relay(Relay::Sealed {
            outbox: "o1".into(),
            package: "p1".into(),
            to_ura: "87654321".into(),
            sha256: "1".repeat(64),
            size: 99_999,
            instances: 3,
        }),
        Event::Relay(Relay::Delivered {
            outbox: "o1".into(),
            package: "p1".into(),
            to_ura: "87654321".into(),
            sha256: "1".repeat(64),
            duplicate: true,
        }),
        Event::Relay(Relay::Failed {
            outbox: "o1".into(),
            to_ura: "87654321".into(),
            attempt: 3,
            reason: "connection refused".into(),
            last: false,
        }),
        Event::Relay(Relay::Cancelled {
            outbox: "o1".into(),
            to_ura: "87654321".into(),
            grant: gid("g-full"),
            reason: "revoked".into(),
        }),
        Event::Relay(Relay::Received {
            package: "p1".into(),
            from_ura: "12345678".into(),
            from: "192.0.2.11".into(),
            studies: vec![uid("1.2.3"), uid("1.2.4")],
            instances: 3,
            sha256: "2".repeat(64),
        }),
        Event::Relay(Relay::Refused {
            from: "192.0.2.12".into(),
            sender_ura: Some("12345678".into()),
            package: Some("p9".into()),
            reason: "bad signature".into(),
        }),
        Event::Relay(Relay::Refused {
            from: "192.0.2.13".into(),
            sender_ura: None,
            package: None,
            reason: "not for us".into(),
        }),
        Event::Forwarded {
            study: uid("1.2.3"),
            sop: uid("1.2.3.4.5"),
            pacs: "PACS@10.0.0.1:104".into(),
            status: Some(0),
            reason: String::new(),
        },
        Event::Forwarded {
            study: uid("1.2.3"),
            sop: uid("1.2.3.4.6"),
            pacs: "PACS@10.0.0.1:104".into(),
            status: None,
            reason: "timeout".into(),
        },
        Event::StudyDeleted {
            study: uid("1.2.3"),
            reason: "retention.max_age".into(),
            instances: 40,
            bytes: 4_000_000,
        },
        Event::Dropped { count: 17 },
        Event::Suppressed { count: 3 },
        // issue 14: who issued and revoked, and the console's own events
        Event::GrantIssued {
            grant: GrantRecord::from(&Grant {
                id: gid("g-actor"),
                ..bare_grant()
            }),
            from: "192.0.2.14 (admin token)".into(),
            by: Some(ActorRecord::admin_token()),
            legal_basis: None,
            patient: None,
        },
        Event::GrantRevoked {
            grant: gid("g-actor"),
            by: "J. de Vries".into(),
            reason: "wrong study".into(),
            cascade: vec![],
            from: "192.0.2.15".into(),
            actor: Some(person()),
        },
        Event::Console(ConsoleEvent::LoggedIn {
            actor: person(),
            via: "oidc".into(),
            from: "192.0.2.16".into(),
        }),
        Event::Console(ConsoleEvent::LoginFailed {
            account: "jdevries".into(),
            via: "local".into(),
            reason: "wrong TOTP".into(),
            from: "192.0.2.17".into(),
        }),
        Event::Console(ConsoleEvent::LoginFailed {
            account: String::new(),
            via: "oidc".into(),
            reason: "ID token audience".into(),
            from: "192.0.2.18".into(),
        }),
        Event::Console(ConsoleEvent::LoggedOut {
            actor: person(),
            from: "192.0.2.16".into(),
        }),
        Event::Console(ConsoleEvent::Refused {
            actor: person(),
            what: "audit".into(),
            from: "192.0.2.16".into(),
        }),
        Event::Console(ConsoleEvent::Account {
            account: "jdevries".into(),
            change: "disabled".into(),
            by: ActorRecord {
                id: "local:beheer".into(),
                name: "beheer".into(),
                role: "admin".into(),
            },
            from: String::new(),
        }),
        // issue 14, the console's share: the legal basis and the patient
        Event::GrantIssued {
            grant: GrantRecord::from(&Grant {
                id: gid("g-referral"),
                target: Target::Study(uid("1.2.826.0.1.3680043.8.498.1")),
                ..bare_grant()
            }),
            from: "192.0.2.19".into(),
            by: Some(person()),
            legal_basis: Some(LegalBasisRecord::Referral),
            patient: Some(PatientRecord {
                id: "PAT-001".into(),
                issuer: "ZKH-A".into(),
                bsn: Some("999911120".into()),
                name: "Jansen^Anna \"<script>\"".into(),
                birth_date: "19700101".into(),
            }),
        },
        Event::GrantIssued {
            grant: GrantRecord::from(&Grant {
                id: gid("g-consent"),
                ..bare_grant()
            }),
            from: "192.0.2.19".into(),
            by: Some(person()),
            legal_basis: Some(LegalBasisRecord::ExplicitConsent {
                note: "patient gaf toestemming aan de balie, \"mondeling\"".into(),
            }),
            patient: None,
        },
        Event::GrantResolved {
            grant: gid("g-consent"),
            study: uid("1.2.3.98"),
            patient: Some(PatientRecord {
                id: "PAT-002".into(),
                issuer: String::new(),
                bsn: None,
                name: "de Boer^Piet".into(),
                birth_date: String::new(),
            }),
        },
        // issue 14, the console's outbox and audit: who sent, retried,
        // cancelled, and who read the audit
        Event::Relay(Relay::Queued {
            outbox: "o3".into(),
            study: uid("1.2.3"),
            to_ura: "87654321".into(),
            priority: "routine".into(),
            by: "console".into(),
            grant: None,
            actor: Some(person()),
        }),
        Event::Relay(Relay::RetryAsked {
            outbox: "o3".into(),
            to_ura: "87654321".into(),
            actor: person(),
            from: "192.0.2.19".into(),
        }),
        Event::Relay(Relay::Withdrawn {
            outbox: "o3".into(),
            to_ura: "87654321".into(),
            actor: person(),
            from: "192.0.2.19".into(),
            reason: "verkeerd adres, \"B\"".into(),
        }),
        Event::Console(ConsoleEvent::Audited {
            actor: person(),
            what: "export.csv".into(),
            query: "patient=Jansen&from=2026-12-01".into(),
            from: "192.0.2.19".into(),
        }),
        // issue 15: a grant by accession names its patient (and sender);
        // a namesake study of another patient is reported
        Event::GrantIssued {
            grant: GrantRecord::from(&Grant {
                id: gid("g-acc"),
                target: Target::Accession(crate::authz::Awaited {
                    number: "ACC-0043".into(),
                    patient_id: Some("PAT-003".into()),
                    bsn: Some("999999990".into()),
                    source_ae: Some("CT01".into()),
                }),
                ..bare_grant()
            }),
            from: "192.0.2.19".into(),
            by: Some(person()),
            legal_basis: Some(LegalBasisRecord::Referral),
            patient: None,
        },
        Event::GrantMismatch {
            grant: gid("g-acc"),
            study: uid("1.2.3.97"),
            reason: "another patient: patient ID \"PAT-009\", not \"PAT-003\"".into(),
        },
    ]
}

fn person() -> ActorRecord {
    ActorRecord {
        id: "oidc:https://login.zkh-a.example#8f2c".into(),
        name: "J. de Vries".into(),
        role: "user".into(),
    }
}

/// The golden lines for `events()` beyond the file (run with --ignored
/// --nocapture when events are added; append what it prints).
#[test]
#[ignore]
fn print_new_golden_lines() {
    let lines: Vec<&str> = GOLDEN.lines().collect();
    let mut prev = crate::journal::GENESIS.to_string();
    for (i, event) in events().iter().enumerate() {
        let seq = i as u64 + 1;
        let at = Timestamp(1_780_000_000_000 + i as u64 * 1001);
        let (written, hash) = seal(seq, at, &prev, event).unwrap();
        if i >= lines.len() {
            println!("{written}");
        }
        prev = hash;
    }
}

#[test]
fn events_built_from_authz_types_write_the_golden_lines() {
    let lines: Vec<&str> = GOLDEN.lines().collect();
    let built = events();
    assert_eq!(lines.len(), built.len());
    let mut prev = crate::journal::GENESIS.to_string();
    for (i, (line, event)) in lines.iter().zip(&built).enumerate() {
        let seq = i as u64 + 1;
        let at = Timestamp(1_780_000_000_000 + i as u64 * 1001);
        let (written, hash) = seal(seq, at, &prev, event).unwrap();
        assert_eq!(
            &written, line,
            "event {seq} no longer writes its golden line"
        );
        prev = hash;
    }
}

#[test]
fn golden_lines_read_back_as_the_records_authz_builds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00000000000000000001.jsonl"), GOLDEN).unwrap();
    let records: Vec<_> = crate::journal::read(dir.path(), 1)
        .unwrap()
        .map(|item| item.unwrap().0)
        .collect();
    let built = events();
    assert_eq!(records.len(), built.len());
    for (record, event) in records.iter().zip(&built) {
        assert_eq!(&record.event, event, "record {}", record.seq);
    }
    let report = crate::journal::verify(dir.path()).unwrap();
    assert_eq!(report.verified, built.len() as u64);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn replay_gives_back_the_grant_and_holder_that_were_journaled() {
    for grant in [full_grant(), bare_grant()] {
        assert_eq!(Grant::from(GrantRecord::from(&grant)), grant);
    }
    let token = Holder::Token {
        hash: "7".repeat(64),
    };
    assert_eq!(Holder::from(HolderRecord::from(&token)), token);
    let Event::GrantBound { holder, .. } = &events()[5] else {
        panic!("event 6 is a binding");
    };
    let Holder::Certificate(cert) = Holder::from(holder.clone()) else {
        panic!("bound to a certificate");
    };
    assert_eq!(cert.uzi.map(|u| u.uzi_number).as_deref(), Some("123456789"));
}
