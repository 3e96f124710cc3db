//! Requests parsed into endpoints before anything is handled.

use hyper::Method;

use super::WebError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    Readyz,
    Metrics,
    /// Browsers ask for it on every page; an empty answer, not a 404.
    Favicon,
    /// The code entry page.
    Home,
    Redeem,
    /// A shared study's page (or the offer to bind it).
    Share(String),
    Bind(String),
    Delegate(String),
    /// `/s/{token}/dicomweb/{path}`: WADO-RS and QIDO-RS.
    DicomWeb {
        token: String,
        path: String,
    },
    /// A browser's CORS preflight for a DICOMweb path.
    DicomWebPreflight,
    /// `/s/{token}/download.zip`
    Download(String),
    AdminStudies,
    AdminStudy(String),
    AdminGrants,
    AdminIssue,
    AdminGrant(String),
    AdminRevoke(String),
    /// `GET` lists the outbox, `POST` queues a push.
    AdminOutbox,
    AdminSend,
    /// Forwarding to the local PACS, per instance.
    AdminForward,
    /// The one work queue: every kind of job.
    AdminQueue,
    /// A peer gateway delivers a package.
    RelayInbox,
    /// Our public OpenPGP certificate.
    OpenPgpKey,
}

impl Endpoint {
    /// Under `/s/{token}`: answers there must never tell a valid token from
    /// an invalid one.
    pub fn is_share(&self) -> bool {
        matches!(
            self,
            Endpoint::Share(_)
                | Endpoint::Bind(_)
                | Endpoint::Delegate(_)
                | Endpoint::DicomWeb { .. }
                | Endpoint::DicomWebPreflight
                | Endpoint::Download(_)
        )
    }
}

fn segment(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

pub fn route(method: &Method, path: &str) -> Result<Endpoint, WebError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    if let ["s", token, "dicomweb", rest @ ..] = segments.as_slice() {
        let token = segment(token).ok_or(WebError::NotFound)?;
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
        ([""], true, _) => Endpoint::Home,
        (["healthz"], true, _) => Endpoint::Healthz,
        (["readyz"], true, _) => Endpoint::Readyz,
        (["metrics"], true, _) => Endpoint::Metrics,
        (["favicon.ico"], true, _) => Endpoint::Favicon,
        (["redeem"], _, true) => Endpoint::Redeem,
        (["s", token], true, _) => Endpoint::Share(segment(token).ok_or(WebError::NotFound)?),
        (["s", token], _, true) => Endpoint::Bind(segment(token).ok_or(WebError::NotFound)?),
        (["s", token, "download.zip"], true, _) => {
            Endpoint::Download(segment(token).ok_or(WebError::NotFound)?)
        }
        (["s", token, "delegate"], _, true) => {
            Endpoint::Delegate(segment(token).ok_or(WebError::NotFound)?)
        }
        (["admin", "v1", "studies"], true, _) => Endpoint::AdminStudies,
        (["admin", "v1", "studies", uid], true, _) => {
            Endpoint::AdminStudy(segment(uid).ok_or(WebError::NotFound)?)
        }
        (["admin", "v1", "grants"], true, _) => Endpoint::AdminGrants,
        (["admin", "v1", "grants"], _, true) => Endpoint::AdminIssue,
        (["admin", "v1", "grants", id], true, _) => {
            Endpoint::AdminGrant(segment(id).ok_or(WebError::NotFound)?)
        }
        (["admin", "v1", "grants", id, "revoke"], _, true) => {
            Endpoint::AdminRevoke(segment(id).ok_or(WebError::NotFound)?)
        }
        (["admin", "v1", "outbox"], true, _) => Endpoint::AdminOutbox,
        (["admin", "v1", "outbox"], _, true) => Endpoint::AdminSend,
        (["admin", "v1", "forward"], true, _) => Endpoint::AdminForward,
        (["admin", "v1", "queue"], true, _) => Endpoint::AdminQueue,
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
        assert_eq!(ok(Method::GET, "/"), Endpoint::Home);
        assert_eq!(ok(Method::GET, "/healthz"), Endpoint::Healthz);
        assert_eq!(ok(Method::GET, "/readyz"), Endpoint::Readyz);
        assert_eq!(ok(Method::GET, "/metrics"), Endpoint::Metrics);
        assert_eq!(ok(Method::POST, "/redeem"), Endpoint::Redeem);
        assert_eq!(ok(Method::POST, "/relay/v1/inbox"), Endpoint::RelayInbox);
        assert_eq!(
            ok(Method::GET, "/.well-known/pushgate/openpgp.asc"),
            Endpoint::OpenPgpKey
        );
        assert_eq!(ok(Method::POST, "/admin/v1/outbox"), Endpoint::AdminSend);
        assert_eq!(ok(Method::GET, "/admin/v1/outbox"), Endpoint::AdminOutbox);
        assert_eq!(ok(Method::GET, "/admin/v1/queue"), Endpoint::AdminQueue);
        assert!(matches!(
            route(&Method::GET, "/relay/v1/inbox"),
            Err(WebError::MethodNotAllowed { allow: "POST" })
        ));
        assert_eq!(ok(Method::GET, "/s/abc"), Endpoint::Share("abc".into()));
        assert_eq!(ok(Method::POST, "/s/abc"), Endpoint::Bind("abc".into()));
        assert_eq!(
            ok(Method::POST, "/s/abc/delegate"),
            Endpoint::Delegate("abc".into())
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
        assert_eq!(ok(Method::GET, "/admin/v1/studies"), Endpoint::AdminStudies);
        assert_eq!(
            ok(Method::GET, "/admin/v1/studies/1.2.3"),
            Endpoint::AdminStudy("1.2.3".into())
        );
        assert_eq!(ok(Method::POST, "/admin/v1/grants"), Endpoint::AdminIssue);
        assert_eq!(
            ok(Method::GET, "/admin/v1/grants/g1"),
            Endpoint::AdminGrant("g1".into())
        );
        assert_eq!(
            ok(Method::POST, "/admin/v1/grants/g1/revoke"),
            Endpoint::AdminRevoke("g1".into())
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
