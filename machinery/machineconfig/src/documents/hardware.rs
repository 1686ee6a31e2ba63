//! Hardware kinds: `PCIDriverRebindConfig`.

use super::network::{named, require_name};
use super::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::Findings;

document_kind! {
    /// `PCIDriverRebindConfig`: binds a PCI device (the document's name, its PCI address) to
    /// another driver (for example `vfio-pci`).
    pub struct PciDriverRebindConfig = "PCIDriverRebindConfig", named {
        /// The driver to bind the device to.
        #[serde(default)]
        pub target_driver: String,
    }
}

impl CheckDocument for PciDriverRebindConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        require_name(kind, &self.name, f);
        if self.target_driver.is_empty() {
            f.error(
                format!("{}.targetDriver", named(kind, &self.name)),
                "targetDriver is required",
            );
        }
    }
}
