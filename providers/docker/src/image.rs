//! `docker_image`: adopt a local image, import a rootfs tarball, or pull.

use bollard::query_parameters::CreateImageOptions;
use futures_util::{stream, StreamExt, TryStreamExt};
use terrace_provider::{Address, Attrs, ProviderError, ProviderResult, Step, Value};
use tokio::io::AsyncReadExt;

use crate::error::status;
use crate::normalize::{split_ref, LABEL_ADDRESS, LABEL_MANAGED};
use crate::schema::IMAGE;
use crate::timeouts::calls::{IMPORT, INSPECT, PULL};
use crate::{require, resolved, DockerProvider};

/// Bytes read from a tarball per chunk of the upload.
const CHUNK: usize = 1 << 20;

fn s<'a>(attrs: &'a Attrs, key: &str) -> &'a str {
    attrs.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The id of the local image `name`, or None if there is none.
async fn local_id(
    p: &DockerProvider,
    address: &Address,
    name: &str,
) -> ProviderResult<Option<String>> {
    let object = format!("image {name:?}");
    let r = p
        .call(INSPECT, address, &object, |d| d.inspect_image(name))
        .await?;
    match r {
        Ok(i) => Ok(i.id),
        Err(e) if status(&e) == Some(404) => Ok(None),
        Err(e) => Err(p.op_err(address, &format!("inspecting image {name:?}"), &e, &[])),
    }
}

pub(crate) async fn create(p: &DockerProvider, step: &Step) -> ProviderResult<Attrs> {
    let mut a = resolved(IMAGE, require(&step.desired, "desired", step)?)?;
    let address = &step.address;
    let name = s(&a, "name").to_string();
    let pull = s(&a, "pull").to_string();
    let existing = local_id(p, address, &name).await?;
    let id = match existing {
        Some(id) if pull != "always" => {
            tracing::info!(%address, image = %name, "adopted local image");
            id
        }
        _ => {
            if let Some(src) = a.get("source").and_then(Value::as_str) {
                import(p, address, &name, src, &a).await?;
            } else if pull == "never" {
                return Err(ProviderError::Operation {
                    address: address.clone(),
                    message: format!(
                        "image {name:?} is not on the engine and pull = \"never\" (set `source` to import a tarball, or allow pulling)"
                    ),
                });
            } else {
                pull_image(p, address, &name).await?;
            }
            local_id(p, address, &name)
                .await?
                .ok_or_else(|| ProviderError::Operation {
                    address: address.clone(),
                    message: format!(
                        "image {name:?} is still missing after it was imported or pulled"
                    ),
                })?
        }
    };
    a.insert("id".into(), id.into());
    Ok(a)
}

/// Nothing about an image changes in place (`pull`, `source` and `cmd` only say how to
/// get it); record the new settings and the current id.
pub(crate) async fn update(p: &DockerProvider, step: &Step) -> ProviderResult<Attrs> {
    let mut a = resolved(IMAGE, require(&step.desired, "desired", step)?)?;
    let name = s(&a, "name").to_string();
    if let Some(id) = local_id(p, &step.address, &name).await? {
        a.insert("id".into(), id.into());
    }
    Ok(a)
}

/// Destroying an image resource only stops managing it: the image stays on the
/// engine. Images are shared caches — other projects' containers, or the next apply,
/// may need them — and one removed by accident may not be rebuilt or pulled again
/// (`pull = "never"`). Remove images with Docker's own tools.
pub(crate) async fn delete(_p: &DockerProvider, step: &Step) -> ProviderResult<()> {
    let prior = resolved(IMAGE, require(&step.prior, "prior", step)?)?;
    tracing::info!(address = %step.address, image = s(&prior, "name"), "image no longer managed; left on the engine");
    Ok(())
}

/// Imports a rootfs tarball (not `docker save` output) as `name`, streaming the file.
async fn import(
    p: &DockerProvider,
    address: &Address,
    name: &str,
    source: &str,
    a: &Attrs,
) -> ProviderResult<()> {
    let file = tokio::fs::File::open(source)
        .await
        .map_err(|e| ProviderError::Operation {
            address: address.clone(),
            message: format!("cannot read image source {source:?}: {e}"),
        })?;
    let body = stream::try_unfold(file, |mut f| async move {
        let mut buf = vec![0u8; CHUNK];
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((buf.into(), f)))
    });
    let (repo, tag) = split_ref(name);
    let mut changes = vec![
        format!("LABEL {LABEL_MANAGED}=true"),
        // JSON string quoting is valid Dockerfile quoting for the address's `"`s.
        format!(
            "LABEL {LABEL_ADDRESS}={}",
            serde_json::Value::from(address.as_str())
        ),
    ];
    if let Some(cmd) = a.get("cmd").filter(|c| c.is_array()) {
        changes.push(format!("CMD {cmd}"));
    }
    let object = format!("{source:?} as {name:?}");
    p.stream(IMPORT, address, &object, |d, progress| {
        // A chunk is asked for once the engine took the one before: progress.
        let sent = progress.clone();
        let body = body.inspect(move |_| sent.touch());
        d.create_image(
            Some(CreateImageOptions {
                from_src: Some("-".into()),
                repo: Some(repo.to_string()),
                tag: Some(tag.to_string()),
                changes,
                ..Default::default()
            }),
            Some(bollard::body_try_stream(body)),
            None,
        )
        .inspect(move |_| progress.touch())
        .try_collect::<Vec<_>>()
    })
    .await?
    .map_err(|e| {
        p.op_err(
            address,
            &format!("importing {source:?} as {name:?}"),
            &e,
            &[],
        )
    })?;
    tracing::info!(%address, image = name, source, "imported image");
    Ok(())
}

async fn pull_image(p: &DockerProvider, address: &Address, name: &str) -> ProviderResult<()> {
    let (repo, tag) = if name.contains('@') {
        (name, "")
    } else {
        split_ref(name)
    };
    let object = format!("image {name:?}");
    p.stream(PULL, address, &object, |d, progress| async move {
        let mut items = d.create_image(
            Some(CreateImageOptions {
                from_image: Some(repo.to_string()),
                tag: (!tag.is_empty()).then(|| tag.to_string()),
                ..Default::default()
            }),
            None,
            None,
        );
        // Every progress line the engine sends counts ("Downloading", "Extracting").
        while let Some(item) = items.next().await {
            progress.touch();
            item.map_err(|e| p.op_err(address, &format!("pulling {name:?}"), &e, &[]))?;
        }
        Ok::<(), ProviderError>(())
    })
    .await??;
    tracing::info!(%address, image = name, "pulled image");
    Ok(())
}
