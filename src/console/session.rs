//! Console sessions: a `__Host-` cookie holding 256 random bits, kept
//! here only as its SHA-256; an idle timeout and an absolute lifetime; a
//! CSRF token per session for every form; a new id at every login (no
//! fixation). Sessions live in memory: a restart logs everyone out, which
//! for a console on the hospital network is the safe side.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use crate::authz::Person;
use crate::authz::secret;

/// The session cookie. `__Host-`: the browser takes it only over HTTPS,
/// with `Secure`, `Path=/` and no `Domain`.
pub const SESSION_COOKIE: &str = "__Host-pushgate_console";

/// Sessions open at once; beyond it the oldest idle one goes.
const MAX_SESSIONS: usize = 10_000;

/// Links and codes a session keeps for its result pages.
const MAX_ISSUED: usize = 10;

/// The link and code of a grant this session just issued: the grant keeps
/// only their hashes, so the result page and the referral sheet can show
/// them only from here — in memory, for this session, until it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedSecret {
    pub grant: crate::authz::GrantId,
    pub url: String,
    pub code: String,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub person: Person,
    /// Every form carries it; a POST without it is refused.
    pub csrf: String,
    pub started: Instant,
    pub last_seen: Instant,
    /// The provider's ID token of an OpenID Connect login, for its logout
    /// (`id_token_hint`); `None` for a local account.
    pub id_token: Option<IdTokenHint>,
    /// The last few grants issued in it, with their link and code.
    pub issued: Vec<IssuedSecret>,
}

/// An ID token kept for the provider's logout; never shown in logs.
#[derive(Clone)]
pub struct IdTokenHint(pub String);

impl std::fmt::Debug for IdTokenHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdTokenHint(..)")
    }
}

pub struct Sessions {
    idle: Duration,
    lifetime: Duration,
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(idle: Duration, lifetime: Duration) -> Sessions {
        Sessions {
            idle,
            lifetime,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for `person` who just logged in; `previous` (the
    /// cookie the browser came with, if any) ends, so an id planted before
    /// login is worth nothing after it. Returns the Set-Cookie value.
    pub fn start(&self, person: Person, previous: Option<&str>) -> (String, Session) {
        self.start_with_id_token(person, previous, None)
    }

    /// [`Sessions::start`] for a login through the identity provider,
    /// keeping its ID token for the provider's logout.
    pub fn start_with_id_token(
        &self,
        person: Person,
        previous: Option<&str>,
        id_token: Option<IdTokenHint>,
    ) -> (String, Session) {
        let (id, hash) = secret::new_holder_token();
        let now = Instant::now();
        let session = Session {
            person,
            csrf: secret::new_holder_token().0,
            started: now,
            last_seen: now,
            id_token,
            issued: Vec::new(),
        };
        let mut open = self.lock();
        if let Some(previous) = previous {
            open.remove(&secret::token_hash(previous));
        }
        self.sweep(&mut open, now);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert(hash, session.clone());
        (self.cookie(&id), session)
    }

    /// The session a cookie value names, if it is still open; counts as
    /// activity.
    pub fn find(&self, id: &str) -> Option<Session> {
        self.look_up(id, true)
    }

    /// The session a cookie value names, if it is still open, without
    /// counting as activity: for a page reloading itself (the console's
    /// live counts), which must not keep an unattended session open past
    /// its idle timeout.
    pub fn peek(&self, id: &str) -> Option<Session> {
        self.look_up(id, false)
    }

    fn look_up(&self, id: &str, activity: bool) -> Option<Session> {
        let now = Instant::now();
        let mut open = self.lock();
        let key = secret::token_hash(id);
        let session = open.get_mut(&key)?;
        if self.ended(session, now) {
            open.remove(&key);
            return None;
        }
        if activity {
            session.last_seen = now;
        }
        Some(session.clone())
    }

    /// Keeps a just-issued grant's link and code with the session the
    /// cookie value `id` names (the last [`MAX_ISSUED`] of them).
    pub fn remember_issued(&self, id: &str, issued: IssuedSecret) {
        if let Some(session) = self.lock().get_mut(&secret::token_hash(id)) {
            if session.issued.len() >= MAX_ISSUED {
                session.issued.remove(0);
            }
            session.issued.push(issued);
        }
    }

    /// Logout.
    pub fn end(&self, id: &str) -> Option<Session> {
        self.lock().remove(&secret::token_hash(id))
    }

    /// Ends every session of a person (an account disabled or reset).
    pub fn end_all_of(&self, person_id: &str) -> usize {
        let mut open = self.lock();
        let before = open.len();
        open.retain(|_, s| s.person.id != person_id);
        before - open.len()
    }

    fn ended(&self, session: &Session, now: Instant) -> bool {
        now.duration_since(session.last_seen) >= self.idle
            || now.duration_since(session.started) >= self.lifetime
    }

    fn sweep(&self, open: &mut HashMap<String, Session>, now: Instant) {
        open.retain(|_, s| !self.ended(s, now));
    }

    fn cookie(&self, id: &str) -> String {
        format!(
            "{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
            self.lifetime.as_secs()
        )
    }
}

/// The Set-Cookie value that removes the session cookie.
pub fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether a form's CSRF field is the session's (constant time).
pub fn csrf_matches(session: &Session, presented: &str) -> bool {
    !presented.is_empty() && bool::from(session.csrf.as_bytes().ct_eq(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Role;

    fn person(id: &str) -> Person {
        Person {
            id: id.into(),
            name: id.into(),
            role: Role::User,
        }
    }

    fn id_of(cookie: &str) -> String {
        cookie
            .strip_prefix(&format!("{SESSION_COOKIE}="))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_cookie_finds_its_session_until_logout() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let (cookie, session) = sessions.start(person("local:a"), None);
        assert!(cookie.contains("Secure; HttpOnly; SameSite=Strict"));
        let id = id_of(&cookie);
        assert_eq!(id.len(), 43, "256 bits, base64url");
        assert_eq!(sessions.find(&id).unwrap().person, session.person);
        assert!(sessions.find("not-a-session").is_none());
        sessions.end(&id);
        assert!(sessions.find(&id).is_none());
    }

    #[test]
    fn login_replaces_the_session_it_came_with() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let (planted, _) = sessions.start(person("local:attacker"), None);
        let planted = id_of(&planted);
        let (fresh, _) = sessions.start(person("local:victim"), Some(&planted));
        assert!(sessions.find(&planted).is_none());
        assert_ne!(id_of(&fresh), planted);
    }

    #[test]
    fn idle_and_absolute_limits_end_a_session() {
        let sessions = Sessions::new(Duration::from_millis(50), Duration::from_millis(400));
        let (cookie, _) = sessions.start(person("local:a"), None);
        let id = id_of(&cookie);
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.find(&id).is_none(), "idle");
        let (cookie, _) = sessions.start(person("local:a"), None);
        let id = id_of(&cookie);
        for _ in 0..12 {
            std::thread::sleep(Duration::from_millis(35));
            let _ = sessions.find(&id);
        }
        assert!(sessions.find(&id).is_none(), "absolute lifetime");
    }

    #[test]
    fn a_page_reloading_itself_does_not_keep_a_session_open() {
        let sessions = Sessions::new(Duration::from_millis(200), Duration::from_secs(60));
        let (cookie, _) = sessions.start(person("local:a"), None);
        let id = id_of(&cookie);
        let started = Instant::now();
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(25));
            assert!(sessions.peek(&id).is_some(), "still open while not idle");
        }
        while started.elapsed() < Duration::from_millis(220) {
            let _ = sessions.peek(&id);
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(sessions.peek(&id).is_none(), "idle despite the reloads");
        assert!(sessions.find(&id).is_none());
        let (cookie, _) = sessions.start(person("local:a"), None);
        let id = id_of(&cookie);
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                sessions.find(&id).is_some(),
                "a person's clicks keep it open"
            );
        }
    }

    #[test]
    fn issued_secrets_stay_with_their_session_only() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let (a, _) = sessions.start(person("local:a"), None);
        let (b, _) = sessions.start(person("local:b"), None);
        for n in 0..12 {
            sessions.remember_issued(
                &id_of(&a),
                IssuedSecret {
                    grant: crate::authz::GrantId(format!("g{n}")),
                    url: format!("https://gw/s/{n}"),
                    code: format!("CODE-{n}"),
                },
            );
        }
        let kept = sessions.find(&id_of(&a)).unwrap().issued;
        assert_eq!(kept.len(), MAX_ISSUED);
        assert_eq!(kept[0].grant.0, "g2");
        assert!(sessions.find(&id_of(&b)).unwrap().issued.is_empty());
        sessions.end(&id_of(&a));
        let (again, _) = sessions.start(person("local:a"), None);
        assert!(sessions.find(&id_of(&again)).unwrap().issued.is_empty());
    }

    #[test]
    fn csrf_is_compared_whole() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let (_, session) = sessions.start(person("local:a"), None);
        assert!(csrf_matches(&session, &session.csrf.clone()));
        assert!(!csrf_matches(&session, ""));
        assert!(!csrf_matches(&session, &session.csrf[..10]));
    }

    #[test]
    fn a_disabled_persons_sessions_all_end() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let (a1, _) = sessions.start(person("local:a"), None);
        let (a2, _) = sessions.start(person("local:a"), None);
        let (b, _) = sessions.start(person("local:b"), None);
        assert_eq!(sessions.end_all_of("local:a"), 2);
        assert!(sessions.find(&id_of(&a1)).is_none());
        assert!(sessions.find(&id_of(&a2)).is_none());
        assert!(sessions.find(&id_of(&b)).is_some());
    }
}
