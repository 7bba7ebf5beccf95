//! The service account view: its image pull secrets and mountable secrets.

use berth_api::pb::core::{ObjectMeta, ServiceAccount};

use super::{Doc, header, list};

pub(super) fn view(d: &mut Doc, sa: &ServiceAccount) {
    let empty = ObjectMeta::default();
    header(d, sa.metadata.as_ref().unwrap_or(&empty));
    let pull: Vec<String> = sa.image_pull_secrets.iter().map(|s| s.name.clone()).collect();
    list(d, 0, "Image pull secrets", &pull);
    let secrets: Vec<String> = sa.secrets.iter().map(|s| s.name.clone()).collect();
    list(d, 0, "Mountable secrets", &secrets);
    d.kv(0, "Tokens", "<none>");
}
