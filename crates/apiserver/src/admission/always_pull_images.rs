//! AlwaysPullImages admission (off by default): every container of a new or
//! changed pod pulls its image, so that a pod cannot use an image another
//! tenant pulled onto the node without the credentials to pull it.

use berth_api::pb::api::object::Kind;

use super::{Attributes, Operation, Plugin};
use crate::error::Error;
use crate::lister::Lister;

/// The `AlwaysPullImages` admission plugin.
#[derive(Debug, Default)]
pub struct AlwaysPullImages;

#[async_trait::async_trait]
impl Plugin for AlwaysPullImages {
    fn name(&self) -> &'static str {
        "AlwaysPullImages"
    }

    async fn admit(&self, attributes: &mut Attributes<'_>, _lister: &Lister) -> Result<(), Error> {
        if !matches!(attributes.operation, Operation::Create | Operation::Update) {
            return Ok(());
        }
        if let Some(Kind::Pod(p)) = &mut attributes.object.kind
            && let Some(spec) = p.spec.as_mut()
        {
            for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut()) {
                c.image_pull_policy = "Always".into();
            }
        }
        Ok(())
    }
}
