//! Studies pushed to us by other gateways: sender, message, forwarding to the PACS per instance.

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
