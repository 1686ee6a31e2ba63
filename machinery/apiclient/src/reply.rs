//! Splitting replies by node: each element of a `messages` reply, and each streamed message,
//! carries `metadata.hostname` (the node it came from, set by apid when fanning out) and, when
//! that node failed, `metadata.error`.

use proto::common::Metadata;
use proto::{common, machine, storage, time};

use crate::error::{ApiClientError, status_text};

/// A reply element or streamed message that starts with `common.Metadata metadata = 1`.
pub trait NodeMessage {
    /// The element's metadata, unset when the endpoint answered for itself.
    fn node_metadata(&self) -> Option<&Metadata>;
}

macro_rules! node_messages {
    ($($message:ty),* $(,)?) => {
        $(impl NodeMessage for $message {
            fn node_metadata(&self) -> Option<&Metadata> {
                self.metadata.as_ref()
            }
        })*
    };
}

node_messages!(
    time::Time,
    storage::BlockDeviceWipe,
    storage::Disks,
    common::Data,
    common::Empty,
    machine::ApplyConfiguration,
    machine::Bootstrap,
    machine::Container,
    machine::CpUsFreqStats,
    machine::CpUsInfo,
    machine::DiskStats,
    machine::DiskUsageInfo,
    machine::EtcdAlarm,
    machine::EtcdAlarmDisarm,
    machine::EtcdDefragment,
    machine::EtcdDowngradeCancel,
    machine::EtcdDowngradeEnable,
    machine::EtcdDowngradeValidate,
    machine::EtcdForfeitLeadership,
    machine::EtcdLeaveCluster,
    machine::EtcdMembers,
    machine::EtcdRecover,
    machine::EtcdRemoveMemberById,
    machine::EtcdStatus,
    machine::Event,
    machine::FileInfo,
    machine::GenerateClientConfiguration,
    machine::Hostname,
    machine::ImageListResponse,
    machine::ImagePull,
    machine::LoadAvg,
    machine::LogsContainer,
    machine::Memory,
    machine::MetaDelete,
    machine::MetaWrite,
    machine::Mounts,
    machine::Netstat,
    machine::NetworkDeviceStats,
    machine::Process,
    machine::Reboot,
    machine::Reset,
    machine::Restart,
    machine::Rollback,
    machine::ServiceList,
    machine::ServiceRestart,
    machine::ServiceStart,
    machine::ServiceStop,
    machine::Shutdown,
    machine::Stats,
    machine::SystemStat,
    machine::Upgrade,
    machine::Version,
);

/// One node's part of a reply.
#[derive(Debug)]
pub struct NodeReply<T> {
    /// `metadata.hostname`, or the fallback label when the element has none.
    pub node: String,
    /// The element, or [`ApiClientError::Node`] when the node reported an error.
    pub result: Result<T, ApiClientError>,
}

impl<T: NodeMessage> NodeReply<T> {
    /// Attributes one element or streamed message to its node; `fallback` names the node when
    /// the element has no hostname (a single node, or the endpoint answering for itself).
    pub fn of(message: T, fallback: &str) -> Self {
        let metadata = message.node_metadata();
        let node = metadata
            .map(|m| m.hostname.as_str())
            .filter(|hostname| !hostname.is_empty())
            .unwrap_or(fallback)
            .to_string();
        let failure = metadata.and_then(|m| {
            if !m.error.is_empty() {
                Some(m.error.clone())
            } else {
                m.status
                    .as_ref()
                    .filter(|status| status.code != 0)
                    .map(|status| status_text(tonic::Code::from(status.code), &status.message))
            }
        });
        let result = match failure {
            Some(message) => Err(ApiClientError::Node {
                node: node.clone(),
                message,
            }),
            None => Ok(message),
        };
        NodeReply { node, result }
    }
}

/// Splits the `messages` of a unary reply into per-node results, in reply order.
pub fn split_by_node<T: NodeMessage>(messages: Vec<T>, fallback: &str) -> Vec<NodeReply<T>> {
    messages
        .into_iter()
        .map(|message| NodeReply::of(message, fallback))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::google::rpc::Status;

    fn version(hostname: &str, error: &str, tag: &str) -> machine::Version {
        machine::Version {
            metadata: (!hostname.is_empty() || !error.is_empty()).then(|| Metadata {
                hostname: hostname.into(),
                error: error.into(),
                status: None,
            }),
            version: Some(machine::VersionInfo {
                tag: tag.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn tag(reply: &NodeReply<machine::Version>) -> &str {
        let version = reply.result.as_ref().expect("success");
        &version.version.as_ref().expect("version").tag
    }

    #[test]
    fn fanned_out_replies_split_by_hostname_and_error() {
        let replies = split_by_node(
            vec![
                version("10.5.0.2", "", "v1"),
                version("10.5.0.3", "connection refused", ""),
                version("10.5.0.4", "", "v2"),
            ],
            "endpoint",
        );
        assert_eq!(replies.len(), 3);
        assert_eq!(
            (replies[0].node.as_str(), tag(&replies[0])),
            ("10.5.0.2", "v1")
        );
        assert_eq!(replies[1].node, "10.5.0.3");
        let error = replies[1].result.as_ref().expect_err("failed node");
        assert_eq!(
            error.to_string(),
            "error from node 10.5.0.3: connection refused"
        );
        assert_eq!(
            (replies[2].node.as_str(), tag(&replies[2])),
            ("10.5.0.4", "v2")
        );
    }

    #[test]
    fn replies_without_hostname_take_the_fallback() {
        let replies = split_by_node(vec![version("", "", "v1")], "10.5.0.2");
        assert_eq!(
            (replies[0].node.as_str(), tag(&replies[0])),
            ("10.5.0.2", "v1")
        );
    }

    #[test]
    fn a_status_alone_marks_a_failure() {
        let message = common::Data {
            metadata: Some(Metadata {
                hostname: "w1".into(),
                error: String::new(),
                status: Some(Status {
                    code: 14,
                    message: "unavailable".into(),
                    details: vec![],
                }),
            }),
            bytes: vec![],
        };
        let reply = NodeReply::of(message, "x");
        assert_eq!(
            reply.result.expect_err("failure").to_string(),
            "error from node w1: rpc error: code = Unavailable desc = unavailable"
        );
    }
}
