//! A shared service's container is protected from destruction by default, against the
//! real local Docker engine: `destroy --include-services` and a replacement are refused,
//! saying how to allow them, until the block says `lifecycle { prevent_destroy = false }`.

mod common;

use std::process::Command;

use common::{unique, Project};

fn hcl(name: &str, command: &str, lifecycle: &str) -> String {
    format!(
        r#"
image "busybox" {{
  name = "terrace/busybox:1"
  pull = "never"
}}

service "web" {{
  engine = "container"
{lifecycle}
  container {{
    name    = "{name}"
    image   = image.busybox
    command = ["sleep", "{command}"]
    memory  = "16m"
  }}
}}
"#
    )
}

/// Removes the container whatever happens to the test.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

fn exists(name: &str) -> bool {
    Command::new("docker")
        .args(["inspect", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_service_container_is_protected_unless_its_block_allows_destroying_it() {
    let name = unique("svcguard").replace('_', "-");
    let _cleanup = Cleanup(name.clone());
    let p = Project::new(&hcl(&name, "3600", ""));
    p.apply();
    assert!(exists(&name));

    // A replacement (the command cannot change in place) is refused, naming the way out.
    p.write(&hcl(&name, "3601", ""));
    let refused = p.terrace(&["plan"]).expect_code(1);
    let err = flat(&refused.stderr);
    assert!(
        err.contains("service.web.container would be replaced"),
        "{err}"
    );
    assert!(err.contains("prevent_destroy = false"), "{err}");
    // So is `destroy --include-services`; plain `destroy` keeps services anyway.
    p.write(&hcl(&name, "3600", ""));
    let refused = p
        .terrace(&["destroy", "--auto-approve", "--include-services"])
        .expect_code(1);
    assert!(
        flat(&refused.stderr).contains("service.web.container would be destroyed"),
        "{}",
        refused.stderr
    );
    assert!(exists(&name));

    // Explicitly allowed: destroyed.
    let allow = "  lifecycle {\n    prevent_destroy = false\n  }\n";
    p.write(&hcl(&name, "3600", allow));
    p.terrace(&["destroy", "--auto-approve", "--include-services"])
        .expect_code(0);
    assert!(!exists(&name));
}
