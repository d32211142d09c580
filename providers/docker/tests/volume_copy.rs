//! A volume's content is copied (a tar, mode 0600) before the volume is removed, and a
//! failed copy keeps the volume.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use common::*;
use serde_json::json;
use terrace_provider::Provider;
use terrace_provider_docker::VOLUME;

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let d = std::env::temp_dir().join(uniq("copies"));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fill(volume: &str) {
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/data"),
        BUSYBOX,
        "sh",
        "-c",
        "echo uploads > /data/a.txt && mkdir /data/sub && echo deep > /data/sub/b.txt",
    ])
    .unwrap();
}

#[tokio::test]
async fn a_volume_is_copied_before_it_is_removed() {
    let tmp = TempDir::new();
    let dir = tmp.0.join("backups");
    let p = provider().with_backup_dir(&dir);
    let mut c = Cleanup::default();
    let vol = c.volume(&uniq("copy"));
    let stored = create(&p, VOLUME, attrs(json!({"name": vol})))
        .await
        .unwrap();
    fill(&vol);

    // The plan can say where the copy goes before anything happens.
    let g = p.safeguard(VOLUME, &stored).expect("volumes are copied");
    assert_eq!(g.kind, "copy");
    assert_eq!(
        g.destination,
        dir.join(format!("docker-volume-{vol}-<time>.tar"))
            .display()
            .to_string()
    );

    delete(&p, VOLUME, &stored).await.unwrap();
    assert!(
        docker(&["volume", "inspect", &vol]).is_err(),
        "the volume is removed"
    );
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with(&format!("docker-volume-{vol}-")) && name.ends_with(".tar"),
        "{name}"
    );
    let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let read = |member: &str| {
        let out = std::process::Command::new("tar")
            .arg("-xOf")
            .arg(file)
            .arg(member)
            .output()
            .unwrap();
        assert!(out.status.success(), "{member} is not in the copy");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(read("./a.txt"), "uploads\n");
    assert_eq!(read("./sub/b.txt"), "deep\n");
    // No helper container is left behind.
    assert!(docker(&["inspect", &format!("terrace-copy-{vol}")]).is_err());
}

#[tokio::test]
async fn a_volume_whose_copy_fails_is_not_removed() {
    let tmp = TempDir::new();
    // A directory cannot be made under a regular file: the copy must fail.
    let blocker = tmp.0.join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let p = provider().with_backup_dir(blocker.join("backups"));
    let mut c = Cleanup::default();
    let vol = c.volume(&uniq("nocopy"));
    let stored = create(&p, VOLUME, attrs(json!({"name": vol})))
        .await
        .unwrap();
    fill(&vol);
    let err = delete(&p, VOLUME, &stored).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "refusing to remove volume {vol:?} without a copy first"
        )),
        "{err}"
    );
    assert!(
        docker(&["volume", "inspect", &vol]).is_ok(),
        "the volume stays"
    );
}

#[tokio::test]
async fn a_volume_already_gone_needs_no_copy() {
    let tmp = TempDir::new();
    let p = provider().with_backup_dir(tmp.0.join("backups"));
    let mut c = Cleanup::default();
    let vol = c.volume(&uniq("gone"));
    let stored = create(&p, VOLUME, attrs(json!({"name": vol})))
        .await
        .unwrap();
    docker(&["volume", "rm", &vol]).unwrap();
    delete(&p, VOLUME, &stored).await.unwrap();
}
