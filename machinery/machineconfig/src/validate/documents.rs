//! Checks of the multi-document kinds: each kind's own (next to the kind, in [`crate::documents`])
//! and the rules across documents.

use std::collections::BTreeSet;

use super::Findings;
use crate::documents::Document;
use crate::v1alpha1::V1Alpha1Config;

/// Pairs of named kinds that cannot share a name (both would mount at `/var/mnt/<name>`).
const CONFLICTING_KINDS: &[(&str, &str)] = &[("UserVolumeConfig", "ExistingVolumeConfig")];

pub(super) fn validate(
    documents: &[Document],
    v1alpha1: Option<&V1Alpha1Config>,
    f: &mut Findings,
) {
    let mut seen = BTreeSet::new();
    for document in documents {
        let kind = document.kind();
        if !seen.insert((kind, document.name())) {
            match document.name() {
                Some(name) => f.error(format!("{kind} {name:?}"), "duplicate document name"),
                None => f.error(kind, "duplicate document"),
            }
        }
        document.check(v1alpha1, f);
    }
    for (first, second) in CONFLICTING_KINDS {
        for document in documents.iter().filter(|d| d.kind() == *first) {
            let name = document.name();
            if documents
                .iter()
                .any(|other| other.kind() == *second && other.name() == name)
            {
                let name = name.unwrap_or_default();
                f.error(
                    format!("{second} {name:?}"),
                    format!("a {first} of the same name exists; the two conflict"),
                );
            }
        }
    }
    crate::documents::check_network_across(documents, v1alpha1, f);
    crate::documents::check_cluster_across(documents, v1alpha1, f);
    crate::documents::check_container_across(documents, f);
}
