//! What the caller presented and what authz decided about it, and the one
//! hop from the async threads to the blocking pool: every handler reaches
//! authz, sled and the files through here.
//!
//! Authz decisions may wait on the grant state's lock while a change is
//! journaled, index reads are sled calls, file layout reads the disk: none
//! of it may run on a reactor thread.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::Request;

use super::dicomweb::{DicomWebError, not_here};
use super::request::{self, Connection};
use super::{App, WebError};
use crate::authz::{Authz, Caller, Credentials, Denied, GrantState, Served};
use crate::journal::AccessKind;
use crate::store::{InstanceKey, InstanceRecord, StudyRecord, Uid};

/// Runs `f` on the blocking pool; a task that panicked is an internal
/// error of the kind the caller answers with.
pub async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<WebError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| E::from(WebError::from(e)))?
}

/// What the caller presented: its credentials (certificate, holder token)
/// and its address.
#[derive(Debug, Clone)]
pub struct Presented {
    pub credentials: Credentials,
    pub from: IpAddr,
}

impl Presented {
    pub fn of<B>(request: &Request<B>, connection: &Connection) -> Presented {
        Presented {
            credentials: request::credentials(request, connection),
            from: connection.peer.ip(),
        }
    }

    pub fn caller(&self) -> Caller<'_> {
        Caller {
            credentials: &self.credentials,
            from: self.from,
        }
    }
}

/// Asks authz about `presented`, off the async threads.
pub async fn decide<T: Send + 'static>(
    app: &App,
    presented: &Presented,
    f: impl FnOnce(&Authz, Caller<'_>) -> T + Send + 'static,
) -> Result<T, WebError> {
    let (authz, presented) = (app.authz.clone(), presented.clone());
    blocking(move || Ok::<_, WebError>(f(&authz, presented.caller()))).await
}

/// A holder's access to its study: decided once per request, carried by
/// whatever produces the response (and journals what it served).
#[derive(Clone)]
pub(crate) struct Access {
    pub app: Arc<App>,
    pub token: String,
    pub grant: GrantState,
    pub study: StudyRecord,
    presented: Presented,
}

impl Access {
    /// Decides a request: the holder of a live grant, for its study. A
    /// refusal is the caller's to answer (neutrally); `None` is a live
    /// accession grant whose study has not arrived yet.
    pub async fn decide(
        app: &Arc<App>,
        token: &str,
        presented: Presented,
        what: AccessKind,
    ) -> Result<Result<Option<Access>, Denied>, WebError> {
        let t = token.to_string();
        let checked = decide(app, &presented, move |authz, caller| {
            authz.check(&t, caller, what)
        })
        .await?;
        let allowed = match checked {
            Ok(allowed) => allowed,
            Err(denied) => return Ok(Err(denied)),
        };
        let Some(study_uid) = allowed.grant.study_uid().cloned() else {
            return Ok(Ok(None));
        };
        let index = app.index.clone();
        let study = blocking(move || index.study(&study_uid).map_err(WebError::from)).await?;
        Ok(Ok(study.map(|study| Access {
            app: app.clone(),
            token: token.to_string(),
            grant: allowed.grant,
            study,
            presented,
        })))
    }

    /// The DICOMweb root URL of this link.
    pub fn base(&self) -> String {
        format!("{}/dicomweb", self.app.authz.url_for(&self.token))
    }

    /// The covered instances of the study (or of one series), in viewing
    /// order: by series number, then instance number. Blocking.
    pub fn covered(
        &self,
        series: Option<&Uid>,
    ) -> Result<Vec<(InstanceKey, InstanceRecord)>, DicomWebError> {
        let mut instances = self.app.index.instances(&self.study.study_uid, series)?;
        instances.retain(|(key, record)| {
            self.grant
                .covers_instance(&self.study, key, &record.attrs.sop_class_uid)
        });
        let series_number = |key: &InstanceKey| {
            self.study
                .series
                .get(&key.series)
                .and_then(|s| s.attrs.series_number)
        };
        instances.sort_by(|(a, ra), (b, rb)| {
            (
                series_number(a),
                &a.series,
                ra.attrs.instance_number,
                &a.sop,
            )
                .cmp(&(
                    series_number(b),
                    &b.series,
                    rb.attrs.instance_number,
                    &b.sop,
                ))
        });
        Ok(instances)
    }

    /// The covered instances a target names; none is a 404.
    pub fn covered_target(
        &self,
        target: &super::dicomweb::Target,
    ) -> Result<Vec<(InstanceKey, InstanceRecord)>, DicomWebError> {
        if target.study() != &self.study.study_uid {
            return Err(not_here());
        }
        let mut instances = self.covered(target.series())?;
        if let Some(sop) = target.instance() {
            instances.retain(|(key, _)| &key.sop == sop);
        }
        if instances.is_empty() {
            return Err(not_here());
        }
        Ok(instances)
    }

    /// Checks again that the grant is live (a long response that goes on
    /// sending re-asks before each new instance).
    pub fn still_allowed(&self, what: AccessKind) -> bool {
        self.app
            .authz
            .check(&self.token, self.presented.caller(), what)
            .is_ok()
    }

    /// A check for a producer to repeat while it sends (see
    /// `stream::produced_while`).
    pub fn guard(self: &Arc<Self>, what: AccessKind) -> impl Fn() -> bool + Send + 'static {
        let access = self.clone();
        move || access.still_allowed(what)
    }

    /// Journals what was served (never waits).
    pub fn served(&self, what: AccessKind, instances: u32, bytes: u64) {
        self.app.authz.record_served(
            self.presented.caller(),
            Served {
                grant: &self.grant.grant.id,
                study: Some(&self.study.study_uid),
                what,
                instances,
                bytes,
            },
        );
    }

    pub fn path_of(&self, key: &InstanceKey) -> std::path::PathBuf {
        self.app.files.path_of(key)
    }
}
