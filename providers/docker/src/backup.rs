//! A copy of a volume's content before the volume is removed: data is never destroyed
//! silently.
//!
//! The copy goes through the engine API only (so it works for an engine behind an SSH
//! forward too): a helper container that is created but never started mounts the volume
//! read-only, and the engine's archive endpoint streams its files as a tar, which is
//! written to a local file created with mode 0600 before any byte is written. If any of
//! it fails, the partial file is removed and the volume is not.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, DownloadFromContainerOptions,
    UploadToContainerOptions,
};
use futures_util::{stream, StreamExt, TryStreamExt};
use terrace_provider::{Address, DataCopy, ProviderError, ProviderResult};
use tokio::io::AsyncWriteExt as _;

use crate::error::status;
use crate::normalize::LABEL_PREFIX;
use crate::timeouts::calls::{COPY_IN, COPY_OUT, CREATE, IMPORT, INSPECT};
use crate::DockerProvider;

/// The image of the helper container: an empty file system, imported on first use. It
/// is never run, so it needs no program.
const COPY_IMAGE_REPO: &str = "terrace/volume-copy";
const COPY_IMAGE_TAG: &str = "1";
/// Where the helper container mounts the volume.
const MOUNT_POINT: &str = "/volume";
/// Marks terrace's helper containers (not resources: never observed as such).
const LABEL_HELPER: &str = "terrace.helper";
/// Bytes per piece of a copy sent back to the engine.
const UPLOAD_CHUNK: usize = 1 << 20;

/// Why a call got no answer in time, for a message that already names the resource
/// (the copy's errors are worded for the volume's step).
fn unbounded(e: ProviderError) -> String {
    match e {
        ProviderError::Operation { message, .. } => message,
        other => other.to_string(),
    }
}

/// The file a copy of `volume` goes to, `<time>` standing for the moment of the copy:
/// what the plan shows.
pub(crate) fn destination_pattern(dir: &Path, volume: &str) -> String {
    dir.join(format!("docker-volume-{volume}-<time>.tar"))
        .display()
        .to_string()
}

/// Copies the content of volume `name` into a new tar file in `dir` and returns its
/// path; `None` if the volume does not exist (nothing to keep).
pub(crate) async fn copy_volume(
    p: &DockerProvider,
    address: &Address,
    name: &str,
    dir: &Path,
) -> ProviderResult<Option<PathBuf>> {
    let fail = |message: String| ProviderError::Operation {
        address: address.clone(),
        message: format!("refusing to remove volume {name:?} without a copy first: {message}"),
    };
    let object = format!("volume {name:?}");
    let r = p
        .call(INSPECT, address, &object, |d| d.inspect_volume(name))
        .await?;
    match r {
        Ok(_) => {}
        Err(e) if status(&e) == Some(404) => return Ok(None),
        Err(e) => return Err(fail(format!("cannot inspect it: {e}"))),
    }
    // One helper per volume, by name: one left behind by a killed run is replaced.
    let helper = format!("terrace-copy-{name}");
    create_helper(p, address, &helper, name, true)
        .await
        .map_err(|e| fail(format!("cannot create the helper container: {e}")))?;

    let result = write_archive(p, address, &helper, name, dir).await;
    remove_helper(p, address, &helper).await;
    let path = result.map_err(fail)?;
    tracing::info!(%address, volume = name, copy = %path.display(), "volume copied before removal");
    Ok(Some(path))
}

/// Creates (never starts) helper container `helper` mounting volume `volume` at
/// [`MOUNT_POINT`], replacing one of that name a killed run left.
async fn create_helper(
    p: &DockerProvider,
    address: &Address,
    helper: &str,
    volume: &str,
    read_only: bool,
) -> Result<(), String> {
    ensure_image(p, address)
        .await
        .map_err(|e| format!("cannot prepare the copy image: {e}"))?;
    remove_helper(p, address, helper).await;
    let object = format!("container {helper:?}");
    p.call(CREATE, address, &object, |d| {
        d.create_container(
            Some(CreateContainerOptions {
                name: Some(helper.to_string()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(format!("{COPY_IMAGE_REPO}:{COPY_IMAGE_TAG}")),
                // Never started: the engine only needs something to record.
                cmd: Some(vec!["/terrace-volume-copy".into()]),
                labels: Some([(LABEL_HELPER.to_string(), "volume-copy".to_string())].into()),
                network_disabled: Some(true),
                host_config: Some(HostConfig {
                    mounts: Some(vec![Mount {
                        target: Some(MOUNT_POINT.into()),
                        source: Some(volume.to_string()),
                        typ: Some(MountType::VOLUME),
                        read_only: Some(read_only),
                        ..Default::default()
                    }]),
                    network_mode: Some("none".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    })
    .await
    .map_err(unbounded)?
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Streams the helper's view of the volume into a new 0600 file; removes it on failure.
async fn write_archive(
    p: &DockerProvider,
    address: &Address,
    helper: &str,
    volume: &str,
    dir: &Path,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Nanoseconds keep two copies of the same volume apart.
    let stamp = {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
    };
    let path = dir.join(format!("docker-volume-{volume}-{stamp}.tar"));
    // Written under another name and renamed when complete: a run killed mid-copy
    // leaves a file that says it is partial, never one that looks like a full copy.
    let partial = dir.join(format!("docker-volume-{volume}-{stamp}.tar.partial"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let mut file = tokio::fs::File::from_std(file);
    let object = format!("volume {volume:?}");
    let written = async {
        let (out, part) = (&mut file, &partial);
        p.stream(COPY_OUT, address, &object, |d, progress| async move {
            let mut chunks = volume_archive(d, helper);
            while let Some(chunk) = chunks.next().await {
                progress.touch();
                let chunk = chunk.map_err(|e| format!("reading the volume failed: {e}"))?;
                out.write_all(&chunk)
                    .await
                    .map_err(|e| format!("writing {} failed: {e}", part.display()))?;
            }
            Ok::<(), String>(())
        })
        .await
        .map_err(unbounded)??;
        file.sync_all()
            .await
            .map_err(|e| format!("writing {} failed: {e}", partial.display()))?;
        // The rename itself must survive a crash before the volume goes.
        terrace_provider::rename_durably(&partial, &path)
            .map_err(|e| format!("renaming {} failed: {e}", partial.display()))
    };
    match written.await {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

async fn remove_helper(p: &DockerProvider, address: &Address, helper: &str) {
    let object = format!("container {helper:?}");
    let r = p.force_remove_container(address, &object, helper).await;
    let error = match r {
        Ok(Ok(())) => return,
        Ok(Err(e)) if status(&e) == Some(404) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    tracing::warn!(container = helper, %error, "could not remove the volume-copy helper container");
}

/// Imports the empty helper image unless it is there.
async fn ensure_image(p: &DockerProvider, address: &Address) -> Result<(), String> {
    let reference = format!("{COPY_IMAGE_REPO}:{COPY_IMAGE_TAG}");
    let object = format!("image {reference:?}");
    let r = p
        .call(INSPECT, address, &object, |d| d.inspect_image(&reference))
        .await
        .map_err(unbounded)?;
    match r {
        Ok(_) => return Ok(()),
        Err(e) if status(&e) == Some(404) => {}
        Err(e) => return Err(e.to_string()),
    }
    // An empty tar archive: two zero blocks.
    let empty: Vec<u8> = vec![0; 1024];
    let body = stream::iter([Ok::<_, std::io::Error>(empty.into())]);
    p.stream(IMPORT, address, &object, |d, progress| {
        d.create_image(
            Some(CreateImageOptions {
                from_src: Some("-".into()),
                repo: Some(COPY_IMAGE_REPO.into()),
                tag: Some(COPY_IMAGE_TAG.into()),
                changes: vec![format!("LABEL {LABEL_PREFIX}helper=volume-copy")],
                ..Default::default()
            }),
            Some(bollard::body_try_stream(body)),
            None,
        )
        .inspect(move |_| progress.touch())
        .try_collect::<Vec<_>>()
    })
    .await
    .map_err(unbounded)?
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// The format of a volume's copy: a tar archive any Docker engine takes.
pub(crate) const COPY_FORMAT: &str = "docker-volume";

/// Copies volume `name` for its move (the same archive as before a removal) and counts
/// what it holds.
pub(crate) async fn export_volume(
    p: &DockerProvider,
    address: &Address,
    name: &str,
) -> ProviderResult<DataCopy> {
    let dir = p.backup_dir().ok_or_else(|| ProviderError::Operation {
        address: address.clone(),
        message: "cannot move a volume without a backup directory to copy it into".into(),
    })?;
    let path =
        copy_volume(p, address, name, dir)
            .await?
            .ok_or_else(|| ProviderError::Operation {
                address: address.clone(),
                message: format!("cannot move volume {name:?}: it does not exist"),
            })?;
    let mut count = TarCount::default();
    let bytes = std::fs::read(&path).map_err(|e| ProviderError::Operation {
        address: address.clone(),
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    count.feed(&bytes);
    Ok(DataCopy {
        format: COPY_FORMAT.into(),
        path,
        inventory: count.inventory(),
    })
}

/// Unpacks `copy` into volume `name` (just created, empty) through a helper container,
/// then reads the volume back and checks it holds as many entries and bytes as the copy.
pub(crate) async fn restore_volume(
    p: &DockerProvider,
    address: &Address,
    name: &str,
    copy: &DataCopy,
) -> ProviderResult<()> {
    let fail = |message: String| ProviderError::Operation {
        address: address.clone(),
        message: format!("restoring volume {name:?} failed (the old volume is kept): {message}"),
    };
    if copy.format != COPY_FORMAT {
        return Err(fail(format!(
            "a {} copy is not a volume's archive",
            copy.format
        )));
    }
    let helper = format!("terrace-restore-{name}");
    create_helper(p, address, &helper, name, false)
        .await
        .map_err(|e| fail(format!("cannot create the helper container: {e}")))?;
    let result = upload_and_count(p, address, &helper, name, &copy.path).await;
    remove_helper(p, address, &helper).await;
    let found = result.map_err(fail)?;
    if found != copy.inventory {
        return Err(fail(format!(
            "it holds {found:?} after the restore, the copy held {:?}",
            copy.inventory
        )));
    }
    tracing::info!(%address, volume = name, "volume restored for its move");
    Ok(())
}

async fn upload_and_count(
    p: &DockerProvider,
    address: &Address,
    helper: &str,
    volume: &str,
    archive: &Path,
) -> Result<std::collections::BTreeMap<String, u64>, String> {
    let body = tokio::fs::read(archive)
        .await
        .map_err(|e| format!("cannot read {}: {e}", archive.display()))?;
    let object = format!("volume {volume:?}");
    p.stream(COPY_IN, address, &object, |d, progress| {
        // In pieces, so that each one the engine takes counts as progress: it unpacks
        // the archive as it reads it.
        let body = bytes::Bytes::from(body);
        let body: Vec<bytes::Bytes> = (0..body.len())
            .step_by(UPLOAD_CHUNK)
            .map(|at| body.slice(at..body.len().min(at + UPLOAD_CHUNK)))
            .collect();
        let sent = progress.clone();
        let body = stream::iter(body).inspect(move |_| sent.touch());
        d.upload_to_container(
            helper,
            Some(UploadToContainerOptions {
                path: MOUNT_POINT.into(),
                ..Default::default()
            }),
            bollard::body_stream(body),
        )
    })
    .await
    .map_err(unbounded)?
    .map_err(|e| format!("uploading the copy failed: {e}"))?;
    let mut count = TarCount::default();
    let counted = &mut count;
    p.stream(COPY_OUT, address, &object, |d, progress| async move {
        let mut chunks = volume_archive(d, helper);
        while let Some(chunk) = chunks.next().await {
            progress.touch();
            counted.feed(&chunk.map_err(|e| format!("reading the volume back failed: {e}"))?);
        }
        Ok::<(), String>(())
    })
    .await
    .map_err(unbounded)??;
    Ok(count.inventory())
}

/// Counts the entries and file bytes of a tar stream fed in pieces: the inventory a
/// volume's move compares on both sides.
#[derive(Debug, Default)]
struct TarCount {
    header: Vec<u8>,
    skip: u64,
    entries: u64,
    bytes: u64,
    ended: bool,
}

impl TarCount {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.ended {
            if self.skip > 0 {
                let n = self.skip.min(data.len() as u64) as usize;
                self.skip -= n as u64;
                data = &data[n..];
                continue;
            }
            let n = (512 - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.header.len() < 512 {
                continue;
            }
            let h = std::mem::take(&mut self.header);
            if h.iter().all(|b| *b == 0) {
                self.ended = true;
                continue;
            }
            let size = tar_size(&h[124..136]);
            match h[156] {
                // Regular files (and contiguous ones): their bytes count.
                b'0' | 0 | b'7' => {
                    self.entries += 1;
                    self.bytes += size;
                }
                // Links, devices, directories, FIFOs.
                b'1'..=b'6' => self.entries += 1,
                // Metadata for the next entry (pax, GNU long names): not an entry.
                _ => {}
            }
            self.skip = size.div_ceil(512) * 512;
        }
    }

    fn inventory(&self) -> std::collections::BTreeMap<String, u64> {
        [
            ("entries".to_string(), self.entries),
            ("file_bytes".to_string(), self.bytes),
        ]
        .into()
    }
}

/// A tar header's size field: octal digits, or base-256 when the high bit is set.
fn tar_size(field: &[u8]) -> u64 {
    if field[0] & 0x80 != 0 {
        return field[1..]
            .iter()
            .fold(0u64, |n, b| (n << 8) | u64::from(*b));
    }
    field
        .iter()
        .skip_while(|b| **b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(*b))
        .fold(0u64, |n, b| n * 8 + u64::from(b - b'0'))
}

/// The content of the volume mounted in `helper` at [`MOUNT_POINT`], as a tar stream
/// (`/.` at the end: at the root of the archive, as a copy back in expects it).
fn volume_archive<'a>(
    d: &'a bollard::Docker,
    helper: &'a str,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, bollard::errors::Error>> + 'a {
    d.download_from_container(
        helper,
        Some(DownloadFromContainerOptions {
            path: format!("{MOUNT_POINT}/."),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, flag: u8, size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let s = format!("{size:011o}");
        h[124..135].copy_from_slice(s.as_bytes());
        h[156] = flag;
        h
    }

    #[test]
    fn a_tar_fed_in_odd_pieces_counts_entries_and_file_bytes_not_metadata() {
        let mut tar = header("./", b'5', 0);
        tar.extend(header("pax", b'x', 30));
        tar.extend(vec![b'p'; 512]);
        tar.extend(header("./a", b'0', 700));
        tar.extend(vec![b'a'; 1024]);
        tar.extend(header("./l", b'2', 0));
        tar.extend(vec![0; 1024]);
        let mut count = TarCount::default();
        for piece in tar.chunks(7) {
            count.feed(piece);
        }
        assert_eq!(
            count.inventory(),
            [("entries".to_string(), 3), ("file_bytes".to_string(), 700)].into()
        );
    }
}
