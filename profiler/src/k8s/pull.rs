//! `profgen pull`: collect the agents' profile sets into one tree, merging replicas recorded
//! on different nodes.

use std::path::Path;

use super::{
    http::{self, HttpError},
    profiles::{self, Index, ProfilesError, SetEntry},
};
use crate::{
    model::{ModelError, Recording},
    profile_set::Artifact,
};

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{url}: not a profgen index or recording: {source}")]
    Decode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{url}: {source}")]
    Recording {
        url: String,
        #[source]
        source: ModelError,
    },
    #[error("merging the pulled recordings: {0}")]
    Merge(#[source] ModelError),
    #[error(transparent)]
    Profiles(#[from] ProfilesError),
}

/// Reads every agent's index and recordings, merges sets of the same workload container, and
/// writes them below `out` (synthesized again from the merged recording).
pub async fn pull(agents: &[String], out: &Path) -> Result<Index, PullError> {
    let mut pulled: Vec<(SetEntry, Recording)> = Vec::new();
    for base in agents {
        let base = base.trim_end_matches('/');
        let base = base.strip_suffix("/profiles").unwrap_or(base);
        let url = format!("{base}/profiles");
        let body = http::get(&url).await?;
        let index: Index = serde_json::from_slice(&body).map_err(|source| PullError::Decode {
            url: url.clone(),
            source,
        })?;
        for set in index.sets {
            let url = format!(
                "{base}/profiles/{}/{}",
                set.dir,
                Artifact::Recording.file_name()
            );
            let body = http::get(&url).await?;
            let text = String::from_utf8_lossy(&body);
            let rec = Recording::from_json(Path::new(&url), &text)
                .map_err(|source| PullError::Recording { url, source })?;
            pulled.push((set, rec));
        }
    }
    let sets = profiles::merge_pulled(pulled).map_err(PullError::Merge)?;
    Ok(profiles::write(out, "", &sets)?)
}
