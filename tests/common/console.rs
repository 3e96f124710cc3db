//! A member of staff in the console, as a test drives it: a local account
//! made with `pushgate users add`, enrolled through its link with a TOTP
//! code from `oathtool` (not from pushgate's own code), logged in, and
//! then pages fetched and forms posted with the session cookie and the
//! CSRF token the pages carry.

use std::cell::RefCell;
use std::process::Command;

use super::{Ask, Daemon, Reply};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct Staff<'d> {
    pub daemon: &'d Daemon,
    pub name: String,
    /// The TOTP secret (base32), as the enrolment page showed it.
    pub secret: String,
    /// `__Host-pushgate_console=…`
    pub cookie: String,
    csrf: RefCell<String>,
}

/// The current TOTP code for a base32 secret, `steps` periods from now.
pub fn totp(secret: &str, steps: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = now + steps * 30;
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "--now"])
        .arg(format!("@{at}"))
        .arg(secret)
        .output()
        .expect("oathtool (Debian package oathtool)");
    assert!(
        out.status.success(),
        "oathtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `key=value&…`, percent-encoded.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of `name="csrf" value="…"` in a page, if any.
pub fn csrf_in(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = page[at..].find('"')?;
    Some(page[at..at + end].to_string())
}

/// The session cookie a reply sets (`name=value`), if any.
pub fn session_cookie(reply: &Reply) -> Option<String> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap_or_default().to_string())
        .find(|c| {
            c.starts_with("__Host-pushgate_console=") && c.len() > "__Host-pushgate_console=".len()
        })
}

impl Daemon {
    /// The console's own origin, for same-site form posts.
    pub fn console_origin(&self) -> String {
        format!("https://{}", self.console)
    }

    /// A form posted to the console, as a browser on the console's page
    /// would (same origin), with `cookie` if given.
    pub fn console_post(&self, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Reply {
        let mut headers = vec![
            ("Origin", self.console_origin()),
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            ),
        ];
        if let Some(cookie) = cookie {
            headers.push(("Cookie", cookie.to_string()));
        }
        self.https(
            "POST",
            path,
            Ask {
                headers,
                body: Some(form_body(fields)),
                form: true,
                ..Ask::default()
            },
        )
    }

    /// A local account `name` with `role` ("user" or "admin"), enrolled
    /// and logged in.
    pub fn staff(&self, name: &str, role: &str) -> Staff<'_> {
        let out = self.cli(&["users", "add", name, "--role", role, "--json"]);
        assert!(out.status.success(), "users add: {}", super::text(&out));
        let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let url = made["enrol_url"].as_str().unwrap().to_string();
        self.enrol(name, &url)
    }

    /// Enrols through an enrolment link; logged in.
    pub fn enrol(&self, name: &str, url: &str) -> Staff<'_> {
        let path = &url[url.find("/console/enrol/").expect("an enrolment link")..];
        let page = self.get(path);
        assert_eq!(page.status, 200, "{}", page.body);
        let at = page
            .body
            .find("id=\"secret\">")
            .expect("the TOTP key on the page")
            + 12;
        let end = page.body[at..].find('<').unwrap();
        let secret: String = page.body[at..at + end].split_whitespace().collect();
        let reply = self.console_post(
            path,
            None,
            &[
                ("password", PASSWORD),
                ("repeat", PASSWORD),
                ("code", &totp(&secret, 0)),
            ],
        );
        assert_eq!(reply.status, 303, "enrolment: {}", reply.body);
        let cookie = session_cookie(&reply).expect("a session after enrolment");
        let staff = Staff {
            daemon: self,
            name: name.to_string(),
            secret,
            cookie,
            csrf: RefCell::new(String::new()),
        };
        // the CSRF token from the first page the person sees
        let landing = staff.get(reply.header("location").unwrap_or("/console/"));
        if landing.status != 200 {
            staff.get("/console/users");
        }
        staff
    }
}

impl Staff<'_> {
    pub fn person_id(&self) -> String {
        format!("local:{}", self.name)
    }

    /// A page, with the session; remembers the CSRF token it carries.
    pub fn get(&self, path: &str) -> Reply {
        let reply = self.daemon.https(
            "GET",
            path,
            Ask {
                headers: vec![("Cookie", self.cookie.clone())],
                ..Ask::default()
            },
        );
        if let Some(csrf) = csrf_in(&reply.body) {
            *self.csrf.borrow_mut() = csrf;
        }
        reply
    }

    /// A form post from the console's own page: the session and its CSRF
    /// token added.
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let csrf = self.csrf.borrow().clone();
        assert!(
            !csrf.is_empty(),
            "no CSRF token seen yet: get a console page first"
        );
        let mut all: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        all.extend_from_slice(fields);
        let reply = self.daemon.console_post(path, Some(&self.cookie), &all);
        if let Some(csrf) = csrf_in(&reply.body) {
            *self.csrf.borrow_mut() = csrf;
        }
        reply
    }

    pub fn csrf(&self) -> String {
        self.csrf.borrow().clone()
    }

    /// A fresh login with the password and the next TOTP code: a new
    /// session cookie (the reply is the 303 or the refusal).
    pub fn login(&self, steps: i64) -> Reply {
        self.daemon.console_post(
            "/console/login",
            None,
            &[
                ("name", &self.name),
                ("password", PASSWORD),
                ("code", &totp(&self.secret, steps)),
            ],
        )
    }
}
