//! Requests parsed into endpoints before anything is handled.

use hyper::Method;

use super::WebError;

/// Every request the server answers. `web::answer` matches it without a
/// catch-all, as `admin::handle` matches [`Admin`] and `share::handle`
/// [`Recipient`]: a new endpoint does not compile until it is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    Readyz,
    Metrics,
    /// Browsers ask for it on every page; an empty answer, not a 404.
    Favicon,
    /// The recipient's pages and forms.
    Recipient(Recipient),
    /// `/s/{token}/dicomweb/{path}`: WADO-RS and QIDO-RS.
    DicomWeb {
        token: String,
        path: String,
    },
    /// A browser's CORS preflight for a DICOMweb path.
    DicomWebPreflight,
    /// `/s/{token}/download.zip`
    Download(String),
    /// `/admin/v1/…`, behind the admin token.
    Admin(Admin),
    /// A peer gateway delivers a package.
    RelayInbox,
    /// Our public OpenPGP certificate.
    OpenPgpKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// The code entry page.
    Home,
    Redeem,
    /// A shared study's page (or the offer to bind it).
    Share(String),
    Bind(String),
    Delegate(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    Studies,
    Study(String),
    Grants,
    Issue,
    Grant(String),
    Revoke(String),
    /// `GET` lists the outbox, `POST` queues a push.
    Outbox,
    Send,
    /// Forwarding to the local PACS, per instance.
    Forward,
    /// The one work queue: every kind of job.
    Queue,
}

impl Endpoint {
    /// The endpoint a request names (the console's listener serves the
    /// admin ones of these).
    pub fn parse(method: &Method, path: &str) -> Result<Endpoint, WebError> {
        route(method, path)
    }

    /// For people (pages and forms in a browser) rather than programs:
    /// refusals come as HTML when the request asks for it. The APIs
    /// (admin, DICOMweb, relay, monitoring) always answer JSON.
    pub fn for_people(&self) -> bool {
        match self {
            Endpoint::Recipient(_) | Endpoint::Download(_) => true,
            Endpoint::Healthz
            | Endpoint::Readyz
            | Endpoint::Metrics
            | Endpoint::Favicon
            | Endpoint::DicomWeb { .. }
            | Endpoint::DicomWebPreflight
            | Endpoint::Admin(_)
            | Endpoint::RelayInbox
            | Endpoint::OpenPgpKey => false,
        }
    }
}

/// A path segment that names something (a token, a UID, a grant ID).
fn token_of(s: &str) -> Result<String, WebError> {
    if s.is_empty() {
        return Err(WebError::NotFound);
    }
    Ok(s.to_string())
}

pub fn route(method: &Method, path: &str) -> Result<Endpoint, WebError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    if let ["s", token, "dicomweb", rest @ ..] = segments.as_slice() {
        let token = token_of(token)?;
        if rest.is_empty() || rest.iter().any(|s| s.is_empty()) {
            return Err(WebError::NotFound);
        }
        return match method {
            m if m == Method::OPTIONS => Ok(Endpoint::DicomWebPreflight),
            _ if get => Ok(Endpoint::DicomWeb {
                token,
                path: rest.join("/"),
            }),
            _ => Err(WebError::MethodNotAllowed {
                allow: "GET, HEAD, OPTIONS",
            }),
        };
    }
    let found = match (segments.as_slice(), get, post) {
        ([""], true, _) => Endpoint::Recipient(Recipient::Home),
        (["healthz"], true, _) => Endpoint::Healthz,
        (["readyz"], true, _) => Endpoint::Readyz,
        (["metrics"], true, _) => Endpoint::Metrics,
        (["favicon.ico"], true, _) => Endpoint::Favicon,
        (["redeem"], _, true) => Endpoint::Recipient(Recipient::Redeem),
        (["s", token], true, _) => Endpoint::Recipient(Recipient::Share(token_of(token)?)),
        (["s", token], _, true) => Endpoint::Recipient(Recipient::Bind(token_of(token)?)),
        (["s", token, "download.zip"], true, _) => Endpoint::Download(token_of(token)?),
        (["s", token, "delegate"], _, true) => {
            Endpoint::Recipient(Recipient::Delegate(token_of(token)?))
        }
        (["admin", "v1", "studies"], true, _) => Endpoint::Admin(Admin::Studies),
        (["admin", "v1", "studies", uid], true, _) => Endpoint::Admin(Admin::Study(token_of(uid)?)),
        (["admin", "v1", "grants"], true, _) => Endpoint::Admin(Admin::Grants),
        (["admin", "v1", "grants"], _, true) => Endpoint::Admin(Admin::Issue),
        (["admin", "v1", "grants", id], true, _) => Endpoint::Admin(Admin::Grant(token_of(id)?)),
        (["admin", "v1", "grants", id, "revoke"], _, true) => {
            Endpoint::Admin(Admin::Revoke(token_of(id)?))
        }
        (["admin", "v1", "outbox"], true, _) => Endpoint::Admin(Admin::Outbox),
        (["admin", "v1", "outbox"], _, true) => Endpoint::Admin(Admin::Send),
        (["admin", "v1", "forward"], true, _) => Endpoint::Admin(Admin::Forward),
        (["admin", "v1", "queue"], true, _) => Endpoint::Admin(Admin::Queue),
        (["relay", "v1", "inbox"], _, true) => Endpoint::RelayInbox,
        ([".well-known", "pushgate", "openpgp.asc"], true, _) => Endpoint::OpenPgpKey,
        // Known paths, other methods.
        ([""] | ["healthz"] | ["readyz"] | ["metrics"] | ["admin", "v1", "studies", ..], _, _) => {
            return Err(WebError::MethodNotAllowed { allow: "GET, HEAD" });
        }
        (["redeem"] | ["admin", "v1", "grants", _, "revoke"] | ["relay", "v1", "inbox"], _, _) => {
            return Err(WebError::MethodNotAllowed { allow: "POST" });
        }
        (["admin", "v1", "outbox"], _, _) => {
            return Err(WebError::MethodNotAllowed {
                allow: "GET, HEAD, POST",
            });
        }
        (["admin", "v1", "forward"] | [".well-known", "pushgate", "openpgp.asc"], _, _) => {
            return Err(WebError::MethodNotAllowed { allow: "GET, HEAD" });
        }
        (["admin", "v1", "grants"] | ["admin", "v1", "grants", _], _, _) => {
            return Err(WebError::MethodNotAllowed {
                allow: "GET, HEAD, POST",
            });
        }
        _ => return Err(WebError::NotFound),
    };
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let ok = |m: Method, p: &str| route(&m, p).unwrap();
        assert_eq!(ok(Method::GET, "/"), Endpoint::Recipient(Recipient::Home));
        assert_eq!(ok(Method::GET, "/healthz"), Endpoint::Healthz);
        assert_eq!(ok(Method::GET, "/readyz"), Endpoint::Readyz);
        assert_eq!(ok(Method::GET, "/metrics"), Endpoint::Metrics);
        assert_eq!(
            ok(Method::POST, "/redeem"),
            Endpoint::Recipient(Recipient::Redeem)
        );
        assert_eq!(ok(Method::POST, "/relay/v1/inbox"), Endpoint::RelayInbox);
        assert_eq!(
            ok(Method::GET, "/.well-known/pushgate/openpgp.asc"),
            Endpoint::OpenPgpKey
        );
        assert_eq!(
            ok(Method::POST, "/admin/v1/outbox"),
            Endpoint::Admin(Admin::Send)
        );
        assert_eq!(
            ok(Method::GET, "/admin/v1/outbox"),
            Endpoint::Admin(Admin::Outbox)
        );
        assert_eq!(
            ok(Method::GET, "/admin/v1/queue"),
            Endpoint::Admin(Admin::Queue)
        );
        assert!(matches!(
            route(&Method::GET, "/relay/v1/inbox"),
            Err(WebError::MethodNotAllowed { allow: "POST" })
        ));
        assert_eq!(
            ok(Method::GET, "/s/abc"),
            Endpoint::Recipient(Recipient::Share("abc".into()))
        );
        assert_eq!(
            ok(Method::POST, "/s/abc"),
            Endpoint::Recipient(Recipient::Bind("abc".into()))
        );
        assert_eq!(
            ok(Method::POST, "/s/abc/delegate"),
            Endpoint::Recipient(Recipient::Delegate("abc".into()))
        );
        assert_eq!(
            ok(Method::GET, "/s/abc/dicomweb/studies/1.2/series"),
            Endpoint::DicomWeb {
                token: "abc".into(),
                path: "studies/1.2/series".into()
            }
        );
        assert_eq!(
            ok(Method::OPTIONS, "/s/abc/dicomweb/studies"),
            Endpoint::DicomWebPreflight
        );
        assert_eq!(
            ok(Method::GET, "/s/abc/download.zip"),
            Endpoint::Download("abc".into())
        );
        assert!(matches!(
            route(&Method::GET, "/s/abc/dicomweb/"),
            Err(WebError::NotFound)
        ));
        assert!(matches!(
            route(&Method::POST, "/s/abc/dicomweb/studies"),
            Err(WebError::MethodNotAllowed { .. })
        ));
        assert_eq!(
            ok(Method::GET, "/admin/v1/studies"),
            Endpoint::Admin(Admin::Studies)
        );
        assert_eq!(
            ok(Method::GET, "/admin/v1/studies/1.2.3"),
            Endpoint::Admin(Admin::Study("1.2.3".into()))
        );
        assert_eq!(
            ok(Method::POST, "/admin/v1/grants"),
            Endpoint::Admin(Admin::Issue)
        );
        assert_eq!(
            ok(Method::GET, "/admin/v1/grants/g1"),
            Endpoint::Admin(Admin::Grant("g1".into()))
        );
        assert_eq!(
            ok(Method::POST, "/admin/v1/grants/g1/revoke"),
            Endpoint::Admin(Admin::Revoke("g1".into()))
        );
        for (m, p) in [
            (Method::GET, "/s/"),
            (Method::GET, "/s/abc/x"),
            (Method::GET, "/nope"),
            (Method::GET, "/admin/v1/studies/"),
        ] {
            assert!(matches!(route(&m, p), Err(WebError::NotFound)), "{m} {p}");
        }
        assert!(matches!(
            route(&Method::POST, "/healthz"),
            Err(WebError::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            route(&Method::GET, "/redeem"),
            Err(WebError::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            route(&Method::DELETE, "/admin/v1/grants/g1"),
            Err(WebError::MethodNotAllowed { .. })
        ));
    }
}
