//! Requests parsed into endpoints before anything is handled.

use hyper::Method;

use super::WebError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    AdminStudies,
    AdminStudy(String),
}

pub fn route(method: &Method, path: &str) -> Result<Endpoint, WebError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (endpoint, allow) = match segments.as_slice() {
        ["healthz"] => (Endpoint::Healthz, "GET, HEAD"),
        ["admin", "v1", "studies"] => (Endpoint::AdminStudies, "GET, HEAD"),
        ["admin", "v1", "studies", uid] if !uid.is_empty() => {
            (Endpoint::AdminStudy((*uid).to_string()), "GET, HEAD")
        }
        _ => return Err(WebError::NotFound),
    };
    if method == Method::GET || method == Method::HEAD {
        Ok(endpoint)
    } else {
        Err(WebError::MethodNotAllowed { allow })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(&Method::GET, "/healthz").unwrap(), Endpoint::Healthz);
        assert_eq!(
            route(&Method::GET, "/admin/v1/studies").unwrap(),
            Endpoint::AdminStudies
        );
        assert_eq!(
            route(&Method::GET, "/admin/v1/studies/1.2.3").unwrap(),
            Endpoint::AdminStudy("1.2.3".into())
        );
        assert!(matches!(
            route(&Method::GET, "/admin/v1/studies/"),
            Err(WebError::NotFound)
        ));
        assert!(matches!(
            route(&Method::GET, "/nope"),
            Err(WebError::NotFound)
        ));
        assert!(matches!(
            route(&Method::POST, "/healthz"),
            Err(WebError::MethodNotAllowed { .. })
        ));
    }
}
