//! The audit: search the journal by patient, study, person and period; export as JSON lines and CSV; the per-patient report (AVG art. 15 / NEN 7513).

use hyper::{Method, Request, Response};

use super::{Console, Ctx};
use crate::web::{Body, Inbound, Refusal, WebError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Index,
}

pub fn route(_method: &Method, _rest: &[&str]) -> Option<Route> {
    None
}

pub async fn handle(
    _console: &Console,
    _ctx: &Ctx,
    route: Route,
    _request: Request<Inbound>,
) -> Result<Response<Body>, Refusal> {
    match route {
        Route::Index => Err(WebError::NotFound.into()),
    }
}
