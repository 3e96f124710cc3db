//! DICOMweb paths under `/s/{token}/dicomweb/`, parsed before anything is
//! handled (PS3.18 §10.4 WADO-RS and §10.6 QIDO-RS resources).

use crate::store::Uid;

/// A study, a series or an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Study(Uid),
    Series(Uid, Uid),
    Instance(Uid, Uid, Uid),
}

impl Target {
    pub fn study(&self) -> &Uid {
        match self {
            Target::Study(s) | Target::Series(s, _) | Target::Instance(s, _, _) => s,
        }
    }

    pub fn series(&self) -> Option<&Uid> {
        match self {
            Target::Study(_) => None,
            Target::Series(_, s) | Target::Instance(_, s, _) => Some(s),
        }
    }

    pub fn instance(&self) -> Option<&Uid> {
        match self {
            Target::Instance(_, _, i) => Some(i),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// QIDO-RS: `/studies`, `/series`, `/instances`, and below a study or
    /// series.
    SearchStudies,
    SearchSeries {
        study: Option<Uid>,
    },
    SearchInstances {
        study: Option<Uid>,
        series: Option<Uid>,
    },
    Retrieve(Target),
    Metadata(Target),
    Rendered(Target),
    Thumbnail(Target),
    Frames {
        instance: Target,
        frames: Vec<u32>,
    },
    RenderedFrames {
        instance: Target,
        frames: Vec<u32>,
    },
    ThumbnailFrames {
        instance: Target,
        frames: Vec<u32>,
    },
    /// A bulk data value by tag path, as `/metadata` names it.
    Bulkdata {
        instance: Target,
        path: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("no such DICOMweb resource")]
    Unknown,
    #[error("{0}")]
    Invalid(String),
}

fn uid(s: &str) -> Result<Uid, PathError> {
    Uid::parse(s).map_err(|e| PathError::Invalid(e.to_string()))
}

/// A frame list: `1,3,5` (numbered from 1), at most 10 000 frames.
pub fn frame_list(s: &str) -> Result<Vec<u32>, PathError> {
    let frames = s
        .split(',')
        .map(|f| match f.trim().parse::<u32>() {
            Ok(0) | Err(_) => Err(PathError::Invalid(format!(
                "{f:?} is not a frame number (frames count from 1)"
            ))),
            Ok(n) => Ok(n),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if frames.len() > 10_000 {
        return Err(PathError::Invalid("too many frames in one request".into()));
    }
    Ok(frames)
}

/// Parses the segments after `dicomweb/`.
pub fn parse(segments: &[&str]) -> Result<Resource, PathError> {
    use Resource::*;
    let found = match segments {
        ["studies"] => SearchStudies,
        ["series"] => SearchSeries { study: None },
        ["instances"] => SearchInstances {
            study: None,
            series: None,
        },
        ["studies", s] => Retrieve(Target::Study(uid(s)?)),
        ["studies", s, "metadata"] => Metadata(Target::Study(uid(s)?)),
        ["studies", s, "rendered"] => Rendered(Target::Study(uid(s)?)),
        ["studies", s, "thumbnail"] => Thumbnail(Target::Study(uid(s)?)),
        ["studies", s, "series"] => SearchSeries {
            study: Some(uid(s)?),
        },
        ["studies", s, "instances"] => SearchInstances {
            study: Some(uid(s)?),
            series: None,
        },
        ["studies", s, "series", se] => Retrieve(Target::Series(uid(s)?, uid(se)?)),
        ["studies", s, "series", se, "metadata"] => Metadata(Target::Series(uid(s)?, uid(se)?)),
        ["studies", s, "series", se, "rendered"] => Rendered(Target::Series(uid(s)?, uid(se)?)),
        ["studies", s, "series", se, "thumbnail"] => Thumbnail(Target::Series(uid(s)?, uid(se)?)),
        ["studies", s, "series", se, "instances"] => SearchInstances {
            study: Some(uid(s)?),
            series: Some(uid(se)?),
        },
        ["studies", s, "series", se, "instances", i, rest @ ..] => {
            let instance = Target::Instance(uid(s)?, uid(se)?, uid(i)?);
            match rest {
                [] => Retrieve(instance),
                ["metadata"] => Metadata(instance),
                ["rendered"] => Rendered(instance),
                ["thumbnail"] => Thumbnail(instance),
                ["frames", list] => Frames {
                    instance,
                    frames: frame_list(list)?,
                },
                ["frames", list, "rendered"] => RenderedFrames {
                    instance,
                    frames: frame_list(list)?,
                },
                ["frames", list, "thumbnail"] => ThumbnailFrames {
                    instance,
                    frames: frame_list(list)?,
                },
                ["bulkdata", path] if is_tag_path(path) => Bulkdata {
                    instance,
                    path: path.to_ascii_uppercase(),
                },
                _ => return Err(PathError::Unknown),
            }
        }
        _ => return Err(PathError::Unknown),
    };
    Ok(found)
}

/// `7FE00010`, `0040A730.0.00420011`: tags (8 hex digits) and item
/// indexes, dot-separated.
fn is_tag_path(path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    parts.len() % 2 == 1
        && parts.iter().enumerate().all(|(i, p)| {
            if i % 2 == 0 {
                p.len() == 8 && p.bytes().all(|b| b.is_ascii_hexdigit())
            } else {
                !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit())
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> Result<Resource, PathError> {
        let segments: Vec<&str> = path.split('/').collect();
        parse(&segments)
    }

    fn u(s: &str) -> Uid {
        Uid::parse(s).unwrap()
    }

    #[test]
    fn resources() {
        use Resource::*;
        assert_eq!(p("studies").unwrap(), SearchStudies);
        assert_eq!(p("series").unwrap(), SearchSeries { study: None });
        assert_eq!(
            p("studies/1.2/series/1.3/instances").unwrap(),
            SearchInstances {
                study: Some(u("1.2")),
                series: Some(u("1.3"))
            }
        );
        assert_eq!(p("studies/1.2").unwrap(), Retrieve(Target::Study(u("1.2"))));
        assert_eq!(
            p("studies/1.2/series/1.3/metadata").unwrap(),
            Metadata(Target::Series(u("1.2"), u("1.3")))
        );
        let i = Target::Instance(u("1.2"), u("1.3"), u("1.4"));
        assert_eq!(
            p("studies/1.2/series/1.3/instances/1.4").unwrap(),
            Retrieve(i.clone())
        );
        assert_eq!(
            p("studies/1.2/series/1.3/instances/1.4/frames/1,3").unwrap(),
            Frames {
                instance: i.clone(),
                frames: vec![1, 3]
            }
        );
        assert_eq!(
            p("studies/1.2/series/1.3/instances/1.4/frames/2/rendered").unwrap(),
            RenderedFrames {
                instance: i.clone(),
                frames: vec![2]
            }
        );
        assert_eq!(
            p("studies/1.2/series/1.3/instances/1.4/bulkdata/0040a730.0.00420011").unwrap(),
            Bulkdata {
                instance: i,
                path: "0040A730.0.00420011".into()
            }
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(p("nope"), Err(PathError::Unknown));
        assert_eq!(p("studies/1.2/x"), Err(PathError::Unknown));
        assert_eq!(
            p("studies/1.2/series/1.3/instances/1.4/bulkdata/xyz"),
            Err(PathError::Unknown)
        );
        assert!(matches!(p("studies/abc"), Err(PathError::Invalid(_))));
        assert!(matches!(
            p("studies/1.2/series/1.3/instances/1.4/frames/0"),
            Err(PathError::Invalid(_))
        ));
        assert!(matches!(
            p("studies/1.2/series/1.3/instances/1.4/frames/1,x"),
            Err(PathError::Invalid(_))
        ));
    }
}
