//! Comments for a config written for people (`talosctl gen config --with-docs
//! --with-examples`, both on by default as upstream): a short description of each field the
//! generated documents carry, and commented-out examples of useful fields they leave out.
//! Comments change nothing a YAML parser reads; uncommenting an example gives a config that
//! still loads and validates (a test does just that).
//!
//! The text is a layout-aware pass over the YAML this crate writes (block style, two-space
//! indents, sequences at their key's indent): each key's path is tracked by indentation,
//! block scalars are passed over, and each document is found by its `kind` (the v1alpha1
//! document has none).

/// What a field is for, by path: `machine.kubelet.image` in the v1alpha1 document,
/// `Kind/field` in a typed one. A scalar gets its description at the end of its line, a
/// mapping or sequence on the line above it.
const DOCS: &[(&str, &str)] = &[
    (
        "version",
        "The version of this document's schema: v1alpha1.",
    ),
    (
        "debug",
        "Logs of the machine's services also go to the console.",
    ),
    (
        "persist",
        "Kept for compatibility: the applied config is always kept on STATE.",
    ),
    (
        "machine",
        "How this machine runs: its role, its own PKI, its services and OS settings.",
    ),
    (
        "machine.type",
        "The machine's role in the cluster: controlplane or worker.",
    ),
    (
        "machine.token",
        "The secret a machine shows trustd to be issued certificates of the Talos API PKI.",
    ),
    (
        "machine.ca",
        "The Talos API's certificate authority: it signs apid's certificates and clients'.",
    ),
    ("machine.ca.crt", "The certificate, PEM, base64-encoded."),
    (
        "machine.ca.key",
        "The private key, PEM, base64-encoded (control planes only).",
    ),
    (
        "machine.certSANs",
        "More names and addresses apid's certificate is valid for.",
    ),
    ("machine.kubelet", "The kubelet's settings."),
    ("machine.kubelet.image", "The kubelet image to run."),
    (
        "machine.kubelet.defaultRuntimeSeccompProfileEnabled",
        "Containers get the runtime's default seccomp profile unless they ask otherwise.",
    ),
    (
        "machine.kubelet.disableManifestsDirectory",
        "Static pods come from the API server only, not from a folder on the node.",
    ),
    (
        "machine.network",
        "Hostname, interfaces, resolvers and static hosts (typed network documents may do this instead).",
    ),
    (
        "machine.install",
        "Where and how the machine installs itself when booted from the ISO.",
    ),
    ("machine.install.disk", "The disk to install to."),
    (
        "machine.install.image",
        "The installer image: what upgrades install when given no other.",
    ),
    (
        "machine.install.wipe",
        "Wipe the disk before installing, even when it holds something else.",
    ),
    ("machine.features", "Optional features of the machine."),
    (
        "machine.features.rbac",
        "Roles in client certificates (os:admin, os:reader …) limit what each client may call.",
    ),
    (
        "machine.features.stableHostname",
        "A hostname derived from the machine's identity when none is configured.",
    ),
    (
        "machine.features.apidCheckExtKeyUsage",
        "apid checks the extended key usage of client certificates.",
    ),
    (
        "machine.features.diskQuotaSupport",
        "Project quotas on EPHEMERAL, for the kubelet's ephemeral storage limits.",
    ),
    (
        "machine.features.kubePrism",
        "A local load balancer for the Kubernetes API on every machine.",
    ),
    ("machine.features.kubePrism.enabled", "Run it."),
    (
        "machine.features.kubePrism.port",
        "The local port it listens on.",
    ),
    (
        "machine.features.hostDNS",
        "A caching DNS resolver on the machine for its services and pods.",
    ),
    ("machine.features.hostDNS.enabled", "Run it."),
    (
        "machine.features.hostDNS.forwardKubeDNSToHost",
        "CoreDNS forwards to it rather than to the upstream resolvers.",
    ),
    (
        "machine.nodeLabels",
        "Labels the machine's Kubernetes node carries.",
    ),
    (
        "cluster",
        "What the machines of one cluster share: its PKI, endpoint and Kubernetes components.",
    ),
    (
        "cluster.id",
        "The cluster's identity, shared by its members (discovery).",
    ),
    (
        "cluster.secret",
        "The key that encrypts what members publish about themselves (discovery).",
    ),
    (
        "cluster.controlPlane",
        "How the Kubernetes control plane is reached.",
    ),
    (
        "cluster.controlPlane.endpoint",
        "The Kubernetes API's URL: a load balancer, a VIP or a DNS name of the control planes.",
    ),
    (
        "cluster.clusterName",
        "The cluster's name, in kubeconfigs and talosconfigs.",
    ),
    (
        "cluster.network",
        "The cluster's pod and service networks and its DNS domain.",
    ),
    ("cluster.network.dnsDomain", "The DNS domain of services."),
    (
        "cluster.network.podSubnets",
        "Where pods get their addresses.",
    ),
    (
        "cluster.network.serviceSubnets",
        "Where services get their addresses.",
    ),
    (
        "cluster.token",
        "The bootstrap token with which kubelets join.",
    ),
    (
        "cluster.secretboxEncryptionSecret",
        "The key that encrypts Kubernetes secrets at rest in etcd.",
    ),
    ("cluster.ca", "The Kubernetes certificate authority."),
    (
        "cluster.aggregatorCA",
        "The certificate authority of the API aggregation layer's front proxy.",
    ),
    (
        "cluster.serviceAccount",
        "The key that signs service account tokens.",
    ),
    ("cluster.apiServer", "The Kubernetes API server's settings."),
    (
        "cluster.apiServer.image",
        "The kube-apiserver image to run.",
    ),
    (
        "cluster.apiServer.certSANs",
        "More names and addresses the API server's certificate is valid for.",
    ),
    (
        "cluster.apiServer.disablePodSecurityPolicy",
        "Leave the removed PodSecurityPolicy admission plugin off.",
    ),
    (
        "cluster.apiServer.admissionControl",
        "Admission plugins and their configurations.",
    ),
    (
        "cluster.apiServer.auditPolicy",
        "Which requests the API server's audit log records.",
    ),
    (
        "cluster.controllerManager",
        "The controller manager's settings.",
    ),
    (
        "cluster.controllerManager.image",
        "The kube-controller-manager image to run.",
    ),
    ("cluster.proxy", "kube-proxy's settings."),
    ("cluster.proxy.image", "The kube-proxy image to run."),
    ("cluster.scheduler", "The scheduler's settings."),
    (
        "cluster.scheduler.image",
        "The kube-scheduler image to run.",
    ),
    (
        "cluster.discovery",
        "How members find each other (the Members resources).",
    ),
    ("cluster.discovery.enabled", "Take part in discovery."),
    (
        "cluster.discovery.registries",
        "Where members publish themselves.",
    ),
    (
        "cluster.discovery.registries.kubernetes",
        "Node annotations in Kubernetes.",
    ),
    (
        "cluster.discovery.registries.kubernetes.disabled",
        "Do not use it.",
    ),
    (
        "cluster.discovery.registries.service",
        "A discovery service, encrypted with cluster.secret.",
    ),
    ("cluster.etcd", "etcd's settings on control planes."),
    ("cluster.etcd.ca", "etcd's certificate authority."),
    ("cluster.ca.crt", "The certificate, PEM, base64-encoded."),
    (
        "cluster.ca.key",
        "The private key, PEM, base64-encoded (control planes only).",
    ),
    (
        "cluster.aggregatorCA.crt",
        "The certificate, PEM, base64-encoded.",
    ),
    (
        "cluster.aggregatorCA.key",
        "The private key, PEM, base64-encoded.",
    ),
    (
        "cluster.serviceAccount.key",
        "The private key, PEM, base64-encoded.",
    ),
    (
        "cluster.etcd.ca.crt",
        "The certificate, PEM, base64-encoded.",
    ),
    (
        "cluster.etcd.ca.key",
        "The private key, PEM, base64-encoded.",
    ),
    (
        "HostnameConfig/auto",
        "Where a hostname comes from when none is set: stable (from the machine's identity) or off.",
    ),
];

/// Useful fields the generated config leaves out: parent path, field, title, YAML (the field
/// and its value, at indent zero). Shown commented out after the parent's other fields.
const EXAMPLES: &[(&str, &str, &str, &str)] = &[
    (
        "machine",
        "env",
        "Environment variables of every service (proxies, for example).",
        "env:\n  https_proxy: http://proxy.example.com:3128\n  no_proxy: 10.0.0.0/8\n",
    ),
    (
        "machine",
        "time",
        "NTP servers instead of the default one.",
        "time:\n  servers:\n  - time.cloudflare.com\n",
    ),
    (
        "machine",
        "sysctls",
        "Kernel parameters set at boot.",
        "sysctls:\n  net.core.somaxconn: '65535'\n",
    ),
    (
        "machine",
        "kernel",
        "Kernel modules loaded at boot.",
        "kernel:\n  modules:\n  - name: br_netfilter\n",
    ),
    (
        "machine",
        "logging",
        "Ship service logs as JSON lines over TCP or UDP.",
        "logging:\n  destinations:\n  - endpoint: tcp://192.168.1.10:5044\n    format: json_lines\n",
    ),
    (
        "machine.kubelet",
        "extraArgs",
        "More kubelet flags.",
        "extraArgs:\n  feature-gates: ServerSideApply=true\n",
    ),
    (
        "machine.kubelet",
        "nodeIP",
        "Which of the machine's addresses the kubelet reports.",
        "nodeIP:\n  validSubnets:\n  - 10.0.0.0/8\n",
    ),
    (
        "machine.install",
        "extraKernelArgs",
        "More kernel arguments for the installed system.",
        "extraKernelArgs:\n- console=ttyS1\n",
    ),
    (
        "cluster",
        "allowSchedulingOnControlPlanes",
        "Run workloads on control planes too (single-node clusters).",
        "allowSchedulingOnControlPlanes: true\n",
    ),
    (
        "cluster",
        "extraManifests",
        "Manifests applied to the cluster after bootstrap.",
        "extraManifests:\n- https://www.example.com/manifest1.yaml\n",
    ),
    (
        "cluster.apiServer",
        "extraArgs",
        "More kube-apiserver flags.",
        "extraArgs:\n  feature-gates: ServerSideApply=true\n",
    ),
    (
        "cluster.etcd",
        "advertisedSubnets",
        "Which of the control planes' addresses etcd advertises to its peers.",
        "advertisedSubnets:\n- 10.0.0.0/8\n",
    ),
];

/// `yaml` (as this crate writes it) with descriptions and/or examples added as comments.
pub fn annotate(yaml: &str, with_docs: bool, with_examples: bool) -> String {
    if !with_docs && !with_examples {
        return yaml.to_string();
    }
    documents(yaml)
        .into_iter()
        .map(|document| Annotator::new(document, with_docs, with_examples).run())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The documents of a stream, without their `---` separator lines.
fn documents(stream: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for line in stream.split_inclusive('\n') {
        if line.trim_end() == "---" {
            documents.push(&stream[start..at]);
            start = at + line.len();
        }
        at += line.len();
    }
    documents.push(&stream[start..]);
    documents
}

/// An open mapping: its key's indent and path, its children's indent once seen, and the
/// children's names.
struct Open {
    indent: usize,
    path: String,
    child_indent: Option<usize>,
    children: Vec<String>,
}

struct Annotator<'a> {
    lines: Vec<&'a str>,
    /// `Kind/` for a typed document, empty for the v1alpha1 one.
    prefix: String,
    with_docs: bool,
    with_examples: bool,
    out: String,
    open: Vec<Open>,
}

impl<'a> Annotator<'a> {
    fn new(document: &'a str, with_docs: bool, with_examples: bool) -> Self {
        let lines: Vec<&str> = document.lines().collect();
        let prefix = lines
            .iter()
            .find_map(|line| line.strip_prefix("kind: "))
            .map(|kind| format!("{}/", kind.trim()))
            .unwrap_or_default();
        Annotator {
            lines,
            prefix,
            with_docs,
            with_examples,
            out: String::new(),
            open: vec![Open {
                indent: 0,
                path: String::new(),
                child_indent: Some(0),
                children: Vec::new(),
            }],
        }
    }

    fn run(mut self) -> String {
        let mut block_scalar_of: Option<usize> = None;
        let lines = std::mem::take(&mut self.lines);
        for (number, &line) in lines.iter().enumerate() {
            let indent = indent_of(line);
            // A scalar continued on the next lines cannot take a comment at its end.
            let continued = lines
                .get(number + 1)
                .is_some_and(|next| !next.trim().is_empty() && indent_of(next) > indent);
            if let Some(parent) = block_scalar_of {
                if line.trim().is_empty() || indent > parent {
                    self.out.push_str(line);
                    self.out.push('\n');
                    continue;
                }
                block_scalar_of = None;
            }
            let content = line.trim_start();
            if content.starts_with('-') || content.starts_with('#') || content.is_empty() {
                // A sequence item (its fields are not described) or a comment.
                self.close_deeper_than(indent, content.starts_with('-'));
                let item_value = content.split_once(": ").map_or("", |(_, value)| value);
                if content.starts_with('-') && is_block_scalar(item_value) {
                    // `- key: |`: the scalar's lines are deeper than the item's fields.
                    block_scalar_of = Some(indent + 2);
                }
                self.out.push_str(line);
                self.out.push('\n');
                continue;
            }
            let Some((key, value)) = content.split_once(':') else {
                self.out.push_str(line);
                self.out.push('\n');
                continue;
            };
            self.close_deeper_than(indent, false);
            let parent = self
                .open
                .last_mut()
                .filter(|open| open.child_indent.is_none_or(|child| child == indent));
            let Some(parent) = parent else {
                self.out.push_str(line);
                self.out.push('\n');
                continue;
            };
            parent.child_indent = Some(indent);
            parent.children.push(key.to_string());
            let path = if parent.path.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", parent.path)
            };
            let value = value.trim();
            let nested = value.is_empty();
            let doc = self
                .with_docs
                .then(|| describe(&format!("{}{path}", self.prefix)))
                .flatten();
            match doc {
                Some(doc) if nested || continued || is_block_scalar(value) => {
                    self.out
                        .push_str(&format!("{:indent$}# {doc}\n{line}\n", ""));
                }
                Some(doc) => self.out.push_str(&format!("{line} # {doc}\n")),
                None => {
                    self.out.push_str(line);
                    self.out.push('\n');
                }
            }
            if is_block_scalar(value) {
                block_scalar_of = Some(indent);
            } else if nested {
                self.open.push(Open {
                    indent,
                    path,
                    child_indent: None,
                    children: Vec::new(),
                });
            }
        }
        self.close_deeper_than(0, false);
        self.close_root();
        self.out
    }

    /// Closes the mappings a line at `indent` is outside of (a sequence item at its key's
    /// indent is inside it), writing their examples.
    fn close_deeper_than(&mut self, indent: usize, sequence_item: bool) {
        while self.open.len() > 1 {
            let Some(top) = self.open.last() else { break };
            let inside = match top.child_indent {
                Some(child) => indent >= child,
                None => indent > top.indent || (sequence_item && indent == top.indent),
            };
            if inside {
                break;
            }
            if let Some(closed) = self.open.pop() {
                self.write_examples(&closed);
            }
        }
    }

    fn close_root(&mut self) {
        if let Some(root) = self.open.pop() {
            self.write_examples(&root);
        }
    }

    fn write_examples(&mut self, closed: &Open) {
        if !self.with_examples || !self.prefix.is_empty() {
            return;
        }
        let indent = closed.child_indent.unwrap_or(closed.indent + 2);
        for (_, field, title, yaml) in EXAMPLES.iter().filter(|(parent, field, ..)| {
            *parent == closed.path && !closed.children.iter().any(|c| c == field)
        }) {
            debug_assert!(yaml.starts_with(field));
            if !self.out.ends_with("\n\n") {
                self.out.push('\n');
            }
            self.out.push_str(&format!("{:indent$}# # {title}\n", ""));
            for line in yaml.lines() {
                self.out.push_str(&format!("{:indent$}# {line}\n", ""));
            }
            self.out.push('\n');
        }
    }
}

/// `|`, `>` and their chomping variants: the value is on the lines below.
fn is_block_scalar(value: &str) -> bool {
    matches!(value.trim(), "|" | "|-" | "|+" | ">" | ">-" | ">+")
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn describe(path: &str) -> Option<&'static str> {
    DOCS.iter()
        .find(|(documented, _)| *documented == path)
        .map(|(_, doc)| *doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "version: v1alpha1\nmachine:\n  type: worker\n  certSANs: []\n  install:\n    disk: /dev/sda\n  files:\n  - content: |\n      type: not a key\n    path: /x\ncluster:\n  network:\n    podSubnets:\n    - 10.244.0.0/16\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n";

    #[test]
    fn scalars_get_their_description_inline_and_mappings_above() {
        let text = annotate(SAMPLE, true, false);
        assert!(
            text.contains("  type: worker # The machine's role"),
            "{text}"
        );
        assert!(text.contains("# How this machine runs"), "{text}");
        assert!(
            text.contains("  # Where and how the machine installs itself"),
            "{text}"
        );
        assert!(
            text.contains("auto: stable # Where a hostname comes from"),
            "{text}"
        );
        // Inside a block scalar nothing is described.
        assert!(text.contains("      type: not a key\n"), "{text}");
        assert!(!text.contains("# # "), "{text}");
    }

    #[test]
    fn examples_follow_their_parents_fields_when_left_out() {
        let text = annotate(SAMPLE, false, true);
        let install = text.find("    disk: /dev/sda").unwrap();
        let example = text.find("    # extraKernelArgs:").unwrap();
        let files = text.find("  files:").unwrap();
        assert!(install < example && example < files, "{text}");
        assert!(
            text.contains("  # # Environment variables of every service"),
            "{text}"
        );
        assert!(!text.contains("# Where and how"), "{text}");
    }

    #[test]
    fn nothing_changes_without_docs_or_examples() {
        assert_eq!(annotate(SAMPLE, false, false), SAMPLE);
    }
}
