//! `create -f`: creates each object; one that exists already is an error.

use anyhow::{Context as _, Result, bail};

use super::{Ctx, kind_ref, object_ref, out};
use crate::error;
use crate::manifests;

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Manifest file, directory or `-` for stdin; may be repeated.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: CreateArgs) -> Result<()> {
    let mut manifests = manifests::read(&args.files)?;
    if manifests.is_empty() {
        bail!("no objects passed to create");
    }
    for m in &mut manifests {
        ctx.place(&mut m.object).with_context(|| format!("error when creating {:?}", m.source))?;
    }
    let client = ctx.client().await?;
    for m in manifests {
        let info = m.object.info().expect("parsed objects have a kind");
        let given = m.object.name().to_string();
        let created = client
            .create_object(m.object, false)
            .await
            .map_err(|e| error::api(e, info, &given))
            .with_context(|| format!("error when creating {}/{given} from {:?}", kind_ref(info), m.source))?;
        out(&format!("{} created\n", object_ref(info, created.name())));
    }
    Ok(())
}
