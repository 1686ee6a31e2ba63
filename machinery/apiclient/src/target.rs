//! Which nodes a call is for, carried as gRPC metadata that apid routes on.

use tonic::metadata::{MetadataMap, MetadataValue};

use crate::endpoint::Endpoint;
use crate::error::ApiClientError;

/// The metadata key for a single target (one-to-one proxying).
pub const NODE_KEY: &str = "node";
/// The metadata key for several targets (one-to-many aggregation), one value per node.
pub const NODES_KEY: &str = "nodes";

/// The nodes one call addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeTarget {
    /// The endpoint itself answers: no routing metadata is sent.
    Endpoint,
    /// One node: `node=<name>`; apid proxies the call to it unchanged.
    Node(String),
    /// Several nodes: one `nodes` entry per node; apid fans the call out and stamps each reply
    /// element with `metadata.hostname`.
    Nodes(Vec<String>),
}

impl NodeTarget {
    /// No nodes → [`NodeTarget::Endpoint`], one → [`NodeTarget::Node`], more → [`NodeTarget::Nodes`].
    pub fn for_nodes(nodes: &[String]) -> Self {
        match nodes {
            [] => NodeTarget::Endpoint,
            [node] => NodeTarget::Node(node.clone()),
            _ => NodeTarget::Nodes(nodes.to_vec()),
        }
    }

    /// The nodes named (none for [`NodeTarget::Endpoint`]).
    pub fn nodes(&self) -> &[String] {
        match self {
            NodeTarget::Endpoint => &[],
            NodeTarget::Node(node) => std::slice::from_ref(node),
            NodeTarget::Nodes(nodes) => nodes,
        }
    }

    /// Wraps `message` in a request carrying this target's metadata.
    pub fn request<T>(&self, message: T) -> Result<tonic::Request<T>, ApiClientError> {
        let mut request = tonic::Request::new(message);
        self.apply(request.metadata_mut())?;
        Ok(request)
    }

    /// Replaces any `node`/`nodes` entries of `metadata` with this target's.
    pub fn apply(&self, metadata: &mut MetadataMap) -> Result<(), ApiClientError> {
        metadata.remove(NODE_KEY);
        while metadata.remove(NODES_KEY).is_some() {}
        match self {
            NodeTarget::Endpoint => {}
            NodeTarget::Node(node) => {
                metadata.insert(NODE_KEY, value(node)?);
            }
            NodeTarget::Nodes(nodes) => {
                for node in nodes {
                    metadata.append(NODES_KEY, value(node)?);
                }
            }
        }
        Ok(())
    }

    /// The name to show for a reply element that carries no `metadata.hostname`: the one node
    /// asked for, else the endpoint that answered.
    pub fn fallback_label(&self, endpoint: &Endpoint) -> String {
        match self {
            NodeTarget::Node(node) => node.clone(),
            NodeTarget::Endpoint | NodeTarget::Nodes(_) => endpoint.host().to_string(),
        }
    }
}

fn value(node: &str) -> Result<MetadataValue<tonic::metadata::Ascii>, ApiClientError> {
    let invalid = |reason: &str| ApiClientError::InvalidNode {
        node: node.to_string(),
        reason: reason.to_string(),
    };
    if node.is_empty() {
        return Err(invalid("the name is empty"));
    }
    if !node.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid("only printable ASCII without spaces is allowed"));
    }
    MetadataValue::try_from(node).map_err(|e| invalid(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(metadata: &MetadataMap, key: &str) -> Vec<String> {
        metadata
            .get_all(key)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_string())
            .collect()
    }

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn no_nodes_send_no_metadata() {
        let request = NodeTarget::for_nodes(&[]).request(()).expect("request");
        assert!(request.metadata().is_empty());
    }

    #[test]
    fn one_node_uses_the_single_valued_key() {
        let target = NodeTarget::for_nodes(&nodes(&["10.5.0.2"]));
        assert_eq!(target, NodeTarget::Node("10.5.0.2".into()));
        let request = target.request(()).expect("request");
        assert_eq!(values(request.metadata(), NODE_KEY), ["10.5.0.2"]);
        assert!(values(request.metadata(), NODES_KEY).is_empty());
    }

    #[test]
    fn several_nodes_use_one_nodes_entry_each() {
        let target = NodeTarget::for_nodes(&nodes(&["10.5.0.2", "10.5.0.3", "w1"]));
        let request = target.request(()).expect("request");
        assert_eq!(
            values(request.metadata(), NODES_KEY),
            ["10.5.0.2", "10.5.0.3", "w1"]
        );
        assert!(values(request.metadata(), NODE_KEY).is_empty());
    }

    #[test]
    fn applying_replaces_earlier_targets() {
        let mut metadata = MetadataMap::new();
        NodeTarget::for_nodes(&nodes(&["a", "b"]))
            .apply(&mut metadata)
            .expect("apply");
        NodeTarget::for_nodes(&nodes(&["c"]))
            .apply(&mut metadata)
            .expect("apply");
        assert_eq!(values(&metadata, NODE_KEY), ["c"]);
        assert!(values(&metadata, NODES_KEY).is_empty());
    }

    #[test]
    fn unusable_node_names_are_refused() {
        for bad in ["", "nöde", "a\nb", "a b"] {
            let error = NodeTarget::Node(bad.into())
                .request(())
                .expect_err(bad)
                .to_string();
            assert!(error.starts_with("invalid node"), "{error}");
        }
    }

    #[test]
    fn fallback_label_prefers_the_requested_node() {
        let endpoint = Endpoint::parse("10.5.0.9:50000").expect("endpoint");
        assert_eq!(
            NodeTarget::Node("10.5.0.2".into()).fallback_label(&endpoint),
            "10.5.0.2"
        );
        assert_eq!(NodeTarget::Endpoint.fallback_label(&endpoint), "10.5.0.9");
    }
}
