//! `GET /admin/v1/queue`: the one work queue, every kind of job (pushes to
//! peer gateways, instances to forward to the PACS), newest first, at most
//! `queue::MAX_LISTED` rows. Admitted by `admin::handle` (admin token).

use std::sync::Arc;

use hyper::{Response, StatusCode};

use super::access::blocking;
use super::{App, Body, WebError, json};
use crate::queue::{self, MAX_LISTED};

pub(super) async fn list(app: &Arc<App>) -> Result<Response<Body>, WebError> {
    let store = app.relay.queue.clone();
    let rows = blocking(move || {
        queue::list(store.as_ref(), MAX_LISTED).map_err(|e| WebError::Unavailable(e.to_string()))
    })
    .await?;
    Ok(json(StatusCode::OK, &rows))
}
