//! Logging in to the console with the hospital account (issue 14), against
//! a real OpenID provider: `oidc-provider` from npm (tests/oidc/provider.mjs,
//! installed by tests/oidc/install.sh), driven like a browser with curl
//! and a cookie jar — its login form filled in, its redirects followed.
//! The refusals use tests/oidc/fake.mjs, a provider that hands out the
//! broken ID token each test asks for. Every refusal is asserted on the
//! page the person sees and on the journal's `login_failed` line.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Daemon, Reply, eventually, free_port, text};

const CLIENT_ID: &str = "pushgate-console";
const CLIENT_SECRET: &str = "s3cret: with spaces & symbols";

/// The npm packages, installed once per machine (cached under
/// ~/.cache/pushgate/npm).
fn npm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let node = Command::new("node").arg("--version").output();
        assert!(
            node.as_ref().is_ok_and(|o| o.status.success()),
            "node is needed for the OpenID provider of these tests (Debian's nodejs; `make deps`): {node:?}"
        );
        let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc/install.sh"))
            .output()
            .unwrap();
        assert!(out.status.success(), "tests/oidc/install.sh: {}", text(&out));
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// A node script of tests/oidc, running until dropped.
struct Node {
    child: Child,
    issuer: String,
}

impl Node {
    fn start(script: &str, port: u16, env: &[(&str, String)]) -> Node {
        let mut child = Command::new("node")
            .arg(format!(
                "{}/tests/oidc/{script}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .env("NPM_DIR", npm_dir())
            .env("PORT", port.to_string())
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(issuer) = line.strip_prefix("ready ") {
                        return Node {
                            child,
                            issuer: issuer.to_string(),
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("{script} did not start: {:?}", child.wait());
                }
            }
        }
    }

    fn get(&self, path: &str) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10"])
            .arg(format!("{}{path}", self.issuer))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pushgate daemon whose console logs in through `script`'s provider.
struct Setup {
    provider: Node,
    daemon: Daemon,
    console: String,
}

fn setup(script: &str) -> Setup {
    let console_port = free_port();
    let idp_port = free_port();
    let console = format!("https://127.0.0.1:{console_port}");
    let provider = Node::start(
        script,
        idp_port,
        &[
            ("REDIRECT_URI", format!("{console}/console/oidc/callback")),
            ("POST_LOGOUT_URI", format!("{console}/console/login")),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("oidc.secret");
    std::fs::write(&secret, format!("{CLIENT_SECRET}\n")).unwrap();
    let daemon = Daemon::start_in(
        dir,
        &format!(
            r#"
[console]
listen = "127.0.0.1:{console_port}"

[console.oidc]
issuer = "{}"
client_id = "{CLIENT_ID}"
client_secret_file = "{}"
scopes = ["openid", "profile"]
role_claim = "pushgate_role"
admin_values = ["pushgate-beheer"]
user_values = ["pushgate-gebruiker"]
"#,
            provider.issuer,
            secret.display()
        ),
    );
    Setup {
        provider,
        daemon,
        console,
    }
}

impl Setup {
    fn journal(&self) -> Vec<serde_json::Value> {
        self.daemon.journal()
    }

    /// The console events of `step`, once there are at least `n` (the
    /// journal is written within milliseconds, not at once).
    fn console_events(&self, step: &str, n: usize) -> Vec<serde_json::Value> {
        let read = || -> Vec<serde_json::Value> {
            self.journal()
                .into_iter()
                .map(|l| l["event"].clone())
                .filter(|e| e["type"] == "console" && e["step"] == step)
                .collect()
        };
        eventually(Duration::from_secs(10), || read().len() >= n);
        read()
    }

    /// Asserts a `login_failed` line whose reason contains `reason`.
    fn assert_failed(&self, reason: &str) -> serde_json::Value {
        let find = || {
            self.console_events("login_failed", 0)
                .into_iter()
                .find(|e| e["via"] == "oidc" && e["reason"].as_str().unwrap_or("").contains(reason))
        };
        eventually(Duration::from_secs(10), || find().is_some());
        find().unwrap_or_else(|| {
            panic!(
                "no login_failed with {reason:?} in {:#?}",
                self.console_events("login_failed", 0)
            )
        })
    }
}

/// curl with a cookie jar, one request at a time, no redirects followed.
struct Browser {
    jar: tempfile::NamedTempFile,
    lang: &'static str,
}

impl Browser {
    fn new(lang: &'static str) -> Browser {
        Browser {
            jar: tempfile::NamedTempFile::new().unwrap(),
            lang,
        }
    }

    fn get(&self, url: &str) -> Reply {
        self.curl(url, &[])
    }

    /// A form posted from `origin`'s own page.
    fn post(&self, url: &str, origin: &str, form: &[(&str, &str)]) -> Reply {
        let mut args = vec![
            "-H".to_string(),
            format!("Origin: {origin}"),
            "-H".to_string(),
            "Sec-Fetch-Site: same-origin".to_string(),
        ];
        for (k, v) in form {
            args.push("--data-urlencode".into());
            args.push(format!("{k}={v}"));
        }
        self.curl(url, &args)
    }

    fn curl(&self, url: &str, extra: &[String]) -> Reply {
        let out = Command::new("curl")
            .args(["-sk", "-i", "--max-time", "20"])
            .arg("-b")
            .arg(self.jar.path())
            .arg("-c")
            .arg(self.jar.path())
            .args(["-H", &format!("Accept-Language: {}", self.lang)])
            .args(extra)
            .arg(url)
            .output()
            .unwrap();
        parse(&out.stdout)
    }

    /// Whether the jar holds a session cookie for the console.
    fn has_session(&self) -> bool {
        std::fs::read_to_string(self.jar.path())
            .unwrap()
            .lines()
            .any(|l| l.contains("__Host-pushgate_console\t") && !l.trim_end().ends_with('\t'))
    }
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body_raw = raw.get(split + 4..).unwrap_or_default().to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect(),
        body: String::from_utf8_lossy(&body_raw).to_string(),
        raw: body_raw,
    }
}

fn set_cookies(reply: &Reply) -> Vec<&str> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A location made absolute against `base` (scheme://host:port).
fn absolute(location: &str, base: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else {
        format!("{base}{location}")
    }
}

/// The value of `name=` in an HTML attribute list, after `after`.
fn attribute(html: &str, after: &str, name: &str) -> String {
    let from = html
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} in {html}"));
    let rest = &html[from..];
    let at = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    rest[at..at + rest[at..].find('"').unwrap()].replace("&amp;", "&")
}

impl Setup {
    /// Starts a login at the console; the provider's authorization URL.
    fn start(&self, browser: &Browser, next: &str) -> String {
        let start = browser.get(&format!("{}/console/oidc/start?next={next}", self.console));
        assert_eq!(start.status, 303, "{start:?}");
        let binding = set_cookies(&start)
            .into_iter()
            .find(|c| c.starts_with("__Host-pushgate_oidc="))
            .unwrap_or_else(|| panic!("no binding cookie: {start:?}"))
            .to_string();
        assert!(
            binding.contains("; Secure; HttpOnly; SameSite=Lax; Max-Age=600"),
            "{binding}"
        );
        let location = start.header("location").unwrap().to_string();
        assert!(
            location.starts_with(&format!("{}/", self.provider.issuer)),
            "{location}"
        );
        location
    }

    /// Follows the provider's redirects (filling in its login form as
    /// `login`) to the console's callback; that URL, not yet visited.
    fn through_provider(&self, browser: &Browser, mut url: String, login: &str) -> String {
        let callback = format!("{}/console/oidc/callback", self.console);
        for _ in 0..10 {
            if url.starts_with(&callback) {
                return url;
            }
            let reply = browser.get(&url);
            match reply.status {
                302 | 303 => {
                    url = absolute(reply.header("location").unwrap(), &self.provider.issuer)
                }
                200 if reply.body.contains("name=\"login\"") => {
                    let action = attribute(&reply.body, "<form", "action");
                    let posted = browser.post(
                        &absolute(&action, &self.provider.issuer),
                        &self.provider.issuer,
                        &[("prompt", "login"), ("login", login), ("password", "any")],
                    );
                    assert_eq!(posted.status, 303, "{posted:?}");
                    url = absolute(posted.header("location").unwrap(), &self.provider.issuer);
                }
                _ => panic!("at the provider, {url}: {reply:?}"),
            }
        }
        panic!("no way back to the console from {url}");
    }

    /// The whole login as `login`; the callback's answer.
    fn login(&self, browser: &Browser, login: &str, next: &str) -> Reply {
        let authorize = self.start(browser, next);
        let callback = self.through_provider(browser, authorize, login);
        browser.get(&callback)
    }
}

fn assert_logged_in(reply: &Reply, who: &str, next: &str) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.contains(who), "{who:?} in {}", reply.body);
    assert!(
        reply.body.contains(&format!("content=\"0; url={next}\"")),
        "{}",
        reply.body
    );
    let cookies = set_cookies(reply);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-pushgate_console="))
        .unwrap_or_else(|| panic!("no session cookie: {reply:?}"));
    assert!(
        session.contains("; Path=/; Secure; HttpOnly; SameSite=Strict"),
        "{session}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-pushgate_oidc=;") && c.contains("Max-Age=0")),
        "binding cleared: {cookies:?}"
    );
}

fn assert_refused(setup: &Setup, reply: &Reply, browser: &Browser, page: &str) {
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.body.contains(page), "{page:?} in {}", reply.body);
    assert!(!browser.has_session(), "no session after a refusal");
    assert!(
        !set_cookies(reply)
            .iter()
            .any(|c| c.starts_with("__Host-pushgate_console=")),
        "{reply:?}"
    );
    // what the page says is never a token or a code
    assert!(!reply.body.contains("eyJ"), "{}", reply.body);
    let _ = setup;
}

#[test]
fn an_admin_logs_in_with_the_hospital_account_and_out_again_at_the_provider() {
    let s = setup("provider.mjs");
    let browser = Browser::new("en");
    // the login page offers the hospital account, and keeps where to go
    let page = browser.get(&format!("{}/console/login?next=/console/users", s.console));
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains("Log in with your hospital account"),
        "{}",
        page.body
    );
    let href = attribute(&page.body, "class=\"button\"", "href");
    assert_eq!(href, "/console/oidc/start?next=/console/users");
    let authorize = s.start(&browser, "/console/users");
    let callback = s.through_provider(&browser, authorize, "anna");
    let reply = browser.get(&callback);
    assert_logged_in(
        &reply,
        "Anna de Beheerder · application manager",
        "/console/users",
    );
    assert!(browser.has_session());

    // the session is the console's: an admin page, in the console's frame
    // naming the person, with the logout form
    let users = browser.get(&format!("{}/console/users", s.console));
    assert_eq!(users.status, 200, "{users:?}");
    assert!(
        users
            .body
            .contains("Anna de Beheerder · application manager"),
        "{}",
        users.body
    );
    let csrf = attribute(&users.body, "name=\"csrf\"", "value");

    let logged_in = s.console_events("logged_in", 1);
    assert_eq!(logged_in.len(), 1, "{logged_in:#?}");
    let actor = &logged_in[0]["actor"];
    assert_eq!(actor["id"], format!("oidc:{}#anna", s.provider.issuer));
    assert_eq!(actor["name"], "Anna de Beheerder");
    assert_eq!(actor["role"], "admin");
    assert_eq!(logged_in[0]["via"], "oidc");
    assert_eq!(logged_in[0]["from"], "127.0.0.1");

    // logout: the local session ends, then the provider's
    let logout = browser.post(
        &format!("{}/console/logout", s.console),
        &s.console,
        &[("csrf", &csrf)],
    );
    assert_eq!(logout.status, 303, "{logout:?}");
    let to = logout.header("location").unwrap().to_string();
    assert!(
        to.starts_with(&format!(
            "{}/session/end?id_token_hint=eyJ",
            s.provider.issuer
        )),
        "{to}"
    );
    let back = format!("{}/console/login", s.console)
        .replace(':', "%3A")
        .replace('/', "%2F");
    assert!(
        to.contains(&format!("&post_logout_redirect_uri={back}")),
        "{to}"
    );
    assert!(!browser.has_session());
    assert_eq!(s.console_events("logged_out", 1).len(), 1);
    let home = browser.get(&format!("{}/console/", s.console));
    assert_eq!(home.header("location"), Some("/console/login"), "{home:?}");

    // the provider asks to confirm, then sends the browser back to the login page
    let confirm = browser.get(&to);
    assert_eq!(confirm.status, 200, "{confirm:?}");
    let action = attribute(&confirm.body, "<form", "action");
    let xsrf = attribute(&confirm.body, "name=\"xsrf\"", "value");
    let done = browser.post(
        &absolute(&action, &s.provider.issuer),
        &s.provider.issuer,
        &[("xsrf", &xsrf), ("logout", "yes")],
    );
    assert_eq!(done.status, 303, "{done:?}");
    assert_eq!(
        done.header("location"),
        Some(format!("{}/console/login", s.console).as_str())
    );
    // and the next login asks for the password again
    let again = s.start(&browser, "/console/");
    let at_provider = browser.get(&again);
    let interaction = browser.get(&absolute(
        at_provider.header("location").unwrap(),
        &s.provider.issuer,
    ));
    assert!(
        interaction.body.contains("name=\"login\""),
        "{interaction:?}"
    );
}

#[test]
fn the_role_comes_from_the_claim_and_no_role_is_no_entry() {
    let s = setup("provider.mjs");
    let bram = Browser::new("en");
    let reply = s.login(&bram, "bram", "/console/studies");
    // the name as text, not markup
    assert_logged_in(
        &reply,
        "Bram &quot;&lt;b&gt;&quot; Laborant · user",
        "/console/studies",
    );
    // a gebruiker: not the application manager's pages
    let users = bram.get(&format!("{}/console/users", s.console));
    assert_eq!(users.status, 403, "{users:?}");
    assert!(users.body.contains("applicatiebeheerder"), "{}", users.body);
    assert!(users.body.contains("Laborant · user"), "{}", users.body);
    // no name claim: the preferred username
    let dirk = Browser::new("nl");
    let reply = s.login(&dirk, "dirk", "/console/");
    assert_logged_in(&reply, "dirk.v · gebruiker", "/console/");

    let cees = Browser::new("en");
    let reply = s.login(&cees, "cees", "/console/");
    assert_refused(
        &s,
        &reply,
        &cees,
        "your account has no pushgate role; ask the application manager",
    );
    let failed = s.assert_failed("no pushgate role");
    assert_eq!(failed["account"], "cees");
    assert_eq!(failed["from"], "127.0.0.1");
    let cees_nl = Browser::new("nl");
    let reply = s.login(&cees_nl, "cees", "/console/");
    assert_refused(
        &s,
        &reply,
        &cees_nl,
        "uw account heeft geen rol in pushgate; vraag de applicatiebeheerder",
    );

    let roles: Vec<_> = s
        .console_events("logged_in", 2)
        .iter()
        .map(|e| {
            (
                e["actor"]["name"].as_str().unwrap().to_string(),
                e["actor"]["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("Bram \"<b>\" Laborant".to_string(), "user".to_string()),
            ("dirk.v".to_string(), "user".to_string())
        ]
    );
}

#[test]
fn a_login_is_used_once_by_the_browser_that_started_it() {
    let s = setup("provider.mjs");
    let browser = Browser::new("en");
    let authorize = s.start(&browser, "https://evil.example/");
    let callback = s.through_provider(&browser, authorize, "anna");
    assert!(
        callback.contains("&state=") || callback.contains("?state="),
        "{callback}"
    );
    // another browser with the answer (a planted login): refused, and used up
    let other = Browser::new("en");
    let planted = other.get(&callback);
    assert_refused(
        &s,
        &planted,
        &other,
        "this login was started in another browser",
    );
    s.assert_failed("started in another browser");
    let late = browser.get(&callback);
    assert_refused(
        &s,
        &late,
        &browser,
        "this login has expired or was already used",
    );

    // a good login, then its answer once more
    let authorize = s.start(&browser, "https://evil.example/");
    let callback = s.through_provider(&browser, authorize, "anna");
    let reply = browser.get(&callback);
    // `next` elsewhere: the console's home instead (no open redirect)
    assert_logged_in(&reply, "Anna de Beheerder", "/console/");
    let replay = Browser::new("en");
    std::fs::copy(browser.jar.path(), replay.jar.path()).unwrap();
    let replayed = replay.get(&callback);
    assert_eq!(replayed.status, 403, "{replayed:?}");
    assert!(
        replayed.body.contains("expired or was already used"),
        "{}",
        replayed.body
    );
    s.assert_failed("expired or was already used");

    // a state never issued
    let fresh = Browser::new("en");
    let forged = fresh.get(&format!(
        "{}/console/oidc/callback?code=x&state=forged",
        s.console
    ));
    assert_refused(
        &s,
        &forged,
        &fresh,
        "this login has expired or was already used",
    );

    // the person cancels at the provider: its error, shown and journaled
    let cancel = Browser::new("nl");
    let authorize = s.start(&cancel, "/console/");
    let at = cancel.get(&authorize);
    let interaction = absolute(at.header("location").unwrap(), &s.provider.issuer);
    let abort = cancel.get(&format!("{interaction}/abort"));
    assert_eq!(abort.status, 303, "{abort:?}");
    let answer = absolute(abort.header("location").unwrap(), &s.provider.issuer);
    let answer = s.through_provider(&cancel, answer, "anna");
    assert!(answer.contains("error=access_denied"), "{answer}");
    let reply = cancel.get(&answer);
    assert_refused(
        &s,
        &reply,
        &cancel,
        "de identity provider weigerde het inloggen: access_denied",
    );
    s.assert_failed("refused the login: access_denied");
    assert_eq!(s.console_events("logged_in", 1).len(), 1);
}

#[test]
fn good_tokens_of_every_algorithm_log_in_and_a_new_key_is_fetched() {
    let s = setup("fake.mjs");
    for mode in ["ok", "ps256", "es256", "rotated"] {
        s.provider.get(&format!("/mode?m={mode}"));
        let browser = Browser::new("en");
        let reply = s.login(&browser, "-", "/console/");
        assert_logged_in(&reply, "Fien Fake · user", "/console/");
    }
    // the keys once at first, once more for the key published later
    assert_eq!(s.provider.get("/stats")["jwks"], 2);
    assert_eq!(s.provider.get("/stats")["discovery"], 1, "cached");
    assert_eq!(s.console_events("logged_in", 4).len(), 4);
}

#[test]
fn bad_id_tokens_are_refused_with_the_reason() {
    let s = setup("fake.mjs");
    let cases = [
        ("wrong_aud", "the ID token is not meant for pushgate"),
        ("several_aud", "the ID token lacks the claim \"azp\""),
        ("expired", "the ID token has expired"),
        ("none", "the ID token is not signed (alg \"none\")"),
        (
            "hs256",
            "the ID token is signed with a shared secret (HS256)",
        ),
        (
            "wrong_nonce",
            "the ID token does not answer this login (nonce)",
        ),
        (
            "wrong_iss",
            "the ID token was issued by \"http://127.0.0.1:1/another-issuer\"",
        ),
        ("future_iat", "the ID token's issue time is"),
        ("tampered", "the ID token's signature is not valid"),
        (
            "rogue",
            "signed with a key the provider does not publish (kid \"rogue\")",
        ),
        (
            "bad_code",
            "the identity provider did not accept the login code: invalid_grant",
        ),
        (
            "deny",
            "the identity provider refused the login: access_denied",
        ),
    ];
    let mut first_rogue = None;
    for (mode, page) in cases {
        if mode == "rogue" {
            first_rogue = Some(Instant::now());
        }
        s.provider.get(&format!("/mode?m={mode}"));
        let browser = Browser::new("en");
        let reply = s.login(&browser, "-", "/console/");
        let page = page.replace('"', "&quot;");
        assert_refused(&s, &reply, &browser, &page);
        let reason = page.replace("&quot;", "\"");
        s.assert_failed(&reason);
    }
    // in Dutch, all of it; the language switch leads to the login page
    s.provider.get("/mode?m=expired");
    let dutch = Browser::new("nl");
    let reply = s.login(&dutch, "-", "/console/");
    assert_refused(&s, &reply, &dutch, "het ID-token is verlopen");
    assert!(reply.body.contains("Inloggen mislukt"), "{}", reply.body);
    assert!(
        reply.body.contains("href=\"/console/login?lang=en\""),
        "{}",
        reply.body
    );
    // the provider's own text is shown as text
    let deny = Browser::new("en");
    s.provider.get("/mode?m=deny");
    let reply = s.login(&deny, "-", "/console/");
    assert!(
        reply.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        reply.body
    );
    assert!(!reply.body.contains("<script>alert"), "{}", reply.body);
    // an unknown key fetched the keys again once, not at every attempt
    // (at most once per 30 s)
    s.provider.get("/mode?m=rogue");
    let again = Browser::new("en");
    let reply = s.login(&again, "-", "/console/");
    assert_eq!(reply.status, 403, "{reply:?}");
    if first_rogue.unwrap().elapsed() < Duration::from_secs(25) {
        assert_eq!(
            s.provider.get("/stats")["jwks"],
            2,
            "{}",
            s.provider.get("/stats")
        );
    }
    assert!(s.console_events("logged_in", 0).is_empty());
}

#[test]
fn an_unreadable_client_secret_stops_the_start_with_the_reason() {
    let mut daemon = Daemon::prepare(
        r#"
[console.oidc]
issuer = "http://127.0.0.1:9"
client_id = "pushgate"
client_secret_file = "/nonexistent/oidc.secret"
role_claim = "roles"
user_values = ["pushgate"]
"#,
    );
    let error = daemon.spawn().unwrap_err();
    assert!(
        error.contains("console.oidc.client_secret_file /nonexistent/oidc.secret"),
        "{error}"
    );
}

/// Logins in progress are bounded; one address starting logins by the
/// hundred is limited (429 with Retry-After) before it can push others'
/// out, and may start again once it has waited.
#[test]
fn a_flood_of_started_logins_is_limited_per_address() {
    let s = setup("provider.mjs");
    let browser = Browser::new("en");
    let url = format!("{}/console/oidc/start?next=/console/", s.console);
    let statuses: Vec<u16> = (0..30).map(|_| browser.get(&url).status).collect();
    let allowed = statuses.iter().filter(|&&c| c == 303).count();
    assert!((20..=22).contains(&allowed), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let refused = browser.get(&url);
    assert_eq!(refused.status, 429);
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=4).contains(&wait), "Retry-After {wait}");
    std::thread::sleep(std::time::Duration::from_secs(wait + 1));
    // and the login still works through to the end
    let reply = s.login(&browser, "anna", "/console/users");
    assert_logged_in(&reply, "Anna de Beheerder", "/console/users");
}
