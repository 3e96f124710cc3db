//! Local accounts end to end in memory: add, enrol, log in, the limits,
//! disable, reset — with codes computed from the secret the page shows.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::GrantsConfig;
use crate::journal::Journal;
use crate::store::Store;

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
    accounts: LocalAccounts,
    authz: Arc<Authz>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::temporary(dir.path()).unwrap();
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    let authz = Arc::new(
        Authz::open(
            store.grants.clone(),
            journal,
            store.index.clone(),
            &dir.path().join("authz.key"),
            GrantsConfig {
                default_ttl: Duration::from_secs(86400),
                max_ttl: Duration::from_secs(86400 * 30),
            },
            "https://gw.example".into(),
        )
        .unwrap(),
    );
    let accounts = LocalAccounts::open(store.accounts.clone(), authz.clone(), "Test").unwrap();
    Fixture {
        dir,
        store,
        accounts,
        authz,
    }
}

fn admin() -> ActorRecord {
    ActorRecord::admin_token()
}

const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn code(secret: &[u8], offset_steps: i64) -> String {
    let t = now_seconds() as i64 + offset_steps * totp::STEP as i64;
    format!("{:06}", totp::hotp(secret, totp::step_at(t as u64)))
}

fn enrolled(f: &Fixture, name: &str, role: Role) -> Vec<u8> {
    let enrolment = f.accounts.add(name, "", role, &admin(), "test").unwrap();
    let pending = f.accounts.pending(&enrolment.token).unwrap();
    f.accounts
        .enrol(
            &enrolment.token,
            "correct horse battery",
            "correct horse battery",
            &code(&pending.secret, 0),
            HERE,
        )
        .unwrap();
    pending.secret
}

/// The journal's text once every record queued so far is written
/// (`append` queues; the writer syncs within milliseconds).
fn journal_text(f: &Fixture) -> String {
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while f.authz.journal().lag() > 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut all = String::new();
    for entry in std::fs::read_dir(f.dir.path().join("journal")).unwrap() {
        all.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    all
}

#[test]
fn enrol_then_log_in_with_password_and_code() {
    let f = fixture();
    let secret = enrolled(&f, "anna", Role::User);
    assert!(f.accounts.is_active("anna"));
    // the enrolment code is used: the next login needs the next step
    let person = f
        .accounts
        .login("Anna", "correct horse battery", &code(&secret, 1), HERE)
        .unwrap();
    assert_eq!(person.id, "local:anna");
    assert_eq!(person.role, Role::User);
    // the same code again: refused (replay)
    assert_eq!(
        f.accounts
            .login("anna", "correct horse battery", &code(&secret, 1), HERE),
        Err(LoginError::Wrong)
    );
    let journal = journal_text(&f);
    assert!(journal.contains("\"enrolled\""), "{journal}");
    assert!(journal.contains("logged_in"), "{journal}");
    assert!(journal.contains("wrong or reused TOTP code"), "{journal}");
}

#[test]
fn enrolment_checks_and_is_used_once() {
    let f = fixture();
    let e = f
        .accounts
        .add("bob", "Bob B.", Role::Admin, &admin(), "test")
        .unwrap();
    let secret = f.accounts.pending(&e.token).unwrap().secret;
    let good = code(&secret, 0);
    let try_ = |p: &str, r: &str, c: &str| f.accounts.enrol(&e.token, p, r, c, HERE);
    assert_eq!(try_("short", "short", &good), Err(EnrolError::TooShort));
    assert_eq!(
        try_("long enough one", "long enough two", &good),
        Err(EnrolError::Mismatch)
    );
    assert_eq!(
        try_("long enough one", "long enough one", "000000"),
        Err(EnrolError::WrongCode)
    );
    assert!(try_("long enough one", "long enough one", &good).is_ok());
    assert_eq!(
        try_("long enough one", "long enough one", &good),
        Err(EnrolError::NoSuchLink)
    );
    assert!(f.accounts.pending(&e.token).is_none());
    assert!(f.accounts.pending("not-a-token").is_none());
}

#[test]
fn wrong_name_password_or_code_look_the_same() {
    let f = fixture();
    let secret = enrolled(&f, "carla", Role::User);
    let right = "correct horse battery";
    assert_eq!(
        f.accounts.login("nobody", right, &code(&secret, 1), HERE),
        Err(LoginError::Wrong)
    );
    assert_eq!(
        f.accounts
            .login("carla", "wrong password!", &code(&secret, 1), HERE),
        Err(LoginError::Wrong)
    );
    assert_eq!(
        f.accounts.login("carla", right, "123456", HERE),
        Err(LoginError::Wrong)
    );
}

#[test]
fn a_hundred_wrong_passwords_are_limited_and_journaled() {
    let f = fixture();
    let secret = enrolled(&f, "dirk", Role::User);
    let mut limited = 0;
    for _ in 0..100 {
        match f.accounts.login("dirk", "not the password", "000000", HERE) {
            Err(LoginError::Wrong) => {}
            Err(LoginError::Limited(wait)) => {
                limited += 1;
                assert!(wait > Duration::ZERO);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        limited >= 95,
        "only five tries get through, {limited} limited"
    );
    // the right password is limited too now: the guesser learns nothing
    assert!(matches!(
        f.accounts
            .login("dirk", "correct horse battery", &code(&secret, 1), HERE),
        Err(LoginError::Limited(_))
    ));
    // another account from another address is not
    let other: IpAddr = "127.0.0.9".parse().unwrap();
    let secret_e = enrolled(&f, "eva", Role::User);
    assert!(
        f.accounts
            .login("eva", "correct horse battery", &code(&secret_e, 1), other)
            .is_ok()
    );
    let journal = journal_text(&f);
    assert!(journal.matches("login_failed").count() >= 10, "{journal}");
    assert!(journal.contains("rate limited"));
    drop(f.authz);
}

#[test]
fn disable_and_reset() {
    let f = fixture();
    let secret = enrolled(&f, "fien", Role::User);
    f.accounts.disable("fien", &admin(), "test").unwrap();
    assert!(!f.accounts.is_active("fien"));
    assert_eq!(
        f.accounts
            .login("fien", "correct horse battery", &code(&secret, 1), HERE),
        Err(LoginError::Wrong)
    );
    let again = f.accounts.reset("fien", &admin(), "test").unwrap();
    let new_secret = f.accounts.pending(&again.token).unwrap().secret;
    assert_ne!(new_secret, secret, "a reset gives a new TOTP secret");
    assert_eq!(
        f.accounts.reset("nobody", &admin(), "test").unwrap_err(),
        AccountError::Unknown("nobody".into())
    );
    assert!(matches!(
        f.accounts.add("fien", "", Role::User, &admin(), "t"),
        Err(AccountError::Exists(_))
    ));
    assert!(matches!(
        f.accounts.add("Bad Name!", "", Role::User, &admin(), "t"),
        Err(AccountError::BadName(_))
    ));
}

#[test]
fn accounts_survive_a_reopen_and_keep_no_token_in_clear() {
    let f = fixture();
    enrolled(&f, "gert", Role::Admin);
    let e = f
        .accounts
        .add("hans", "", Role::User, &admin(), "test")
        .unwrap();
    let reopened = LocalAccounts::open(f.store.accounts.clone(), f.authz.clone(), "Test").unwrap();
    assert!(reopened.is_active("gert"));
    assert!(reopened.pending(&e.token).is_some());
    let file = std::fs::read_to_string(f.dir.path().join("accounts.json")).unwrap();
    assert!(
        !file.contains(&e.token),
        "the enrolment token is kept hashed"
    );
    assert!(
        !file.contains("correct horse"),
        "the password is kept hashed"
    );
    assert!(file.contains("$argon2id$"));
}
