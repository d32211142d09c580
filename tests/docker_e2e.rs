//! End to end against the real local Docker engine: the `examples/wordpress-farm`
//! project — a shared MariaDB container, a proxy and three client apps — planned,
//! applied, logged into from inside the apps, drifted by hand and repaired.
//!
//! Needs `scripts/docker-engine.sh` and `scripts/images.sh` (scripts/test.sh runs both).

mod common;

use std::io::{Read as _, Write as _};
use std::process::Command;

use common::{free_port, unique, Cleanup, Project};
use expect_test::expect;

const ADMIN_PASSWORD: &str = "farm-admin-Pw9";

fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Logs in to `db` from inside the app container `app`, with the credentials terrace
/// wired into that container's environment.
fn login_from_app(app: &str, db: &str) -> (bool, String) {
    let script = format!(
        "MYSQL_PWD=\"$DB_PASSWORD\" mariadb -h \"$DB_HOST\" -u \"$DB_USER\" {db} -e 'SELECT 1'"
    );
    docker(&["exec", app, "sh", "-c", &script])
}

struct Farm {
    p: Project,
    prefix: String,
    vars: Vec<String>,
}

impl Farm {
    fn new() -> (Farm, Cleanup) {
        let prefix = unique("tf").replace('_', "");
        let hcl = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/wordpress-farm/main.hcl"
        ))
        .unwrap();
        // These tests replace the database container and destroy the whole farm: its
        // services allow it (services are protected from destruction by default).
        let hcl = common::allow_destroying_services(&hcl);
        let vars = vec![
            format!("prefix={prefix}"),
            format!("db_port={}", free_port()),
            format!("proxy_port={}", free_port()),
            format!("redis_port={}", free_port()),
        ];
        let farm = Farm {
            p: Project::new(&hcl),
            prefix: prefix.clone(),
            vars,
        };
        (farm, Cleanup(prefix))
    }

    fn run(&self, args: &[&str]) -> common::Run {
        self.run_with_password(args, ADMIN_PASSWORD)
    }

    fn run_with_password(&self, args: &[&str], password: &str) -> common::Run {
        let mut all: Vec<&str> = args.to_vec();
        for v in &self.vars {
            all.push("--var");
            all.push(v);
        }
        self.p
            .terrace_env(&all, &[("TERRACE_VAR_db_admin_password", password)])
    }

    fn apply(&self) -> common::Run {
        self.run(&["apply", "--auto-approve"]).expect_code(0)
    }

    fn plan(&self) -> common::Run {
        self.run(&["plan", "--detailed-exitcode"])
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }
}

#[test]
fn wordpress_farm_end_to_end() {
    let (farm, _cleanup) = Farm::new();

    let plan = farm.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains("# service.db.container will be created"),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.all().contains(ADMIN_PASSWORD),
        "admin password leaked into the plan"
    );

    let applied = farm.apply();
    assert!(
        applied.stdout.contains("Apply complete!"),
        "{}",
        applied.stdout
    );
    assert!(!applied.all().contains(ADMIN_PASSWORD));

    // Convergence: nothing to do on a second plan.
    let again = farm.plan().expect_code(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);

    // From inside alice's app: her own database yes, bob's no.
    let alice = farm.name("-alice");
    let (ok, out) = login_from_app(&alice, "wordpress_alice");
    assert!(ok, "alice cannot reach her own database: {out}");
    let (ok, out) = login_from_app(&alice, "wordpress_bob");
    assert!(
        !ok && out.contains("Access denied"),
        "alice reached bob's database: {out}"
    );

    // Routing labels derived from the tenant's domain.
    let (_, labels) = docker(&["inspect", "-f", "{{json .Config.Labels}}", &alice]);
    assert!(labels.contains("Host(`alice.farm.test`)"), "{labels}");

    // The proxy answers on its published port.
    let port = farm.vars[2].strip_prefix("proxy_port=").unwrap();
    let mut conn = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("proxy port");
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1."), "{reply}");

    // Drift: a stopped app, a removed app, a removed volume — reported, then repaired.
    let bob = farm.name("-bob");
    let carol = farm.name("-carol");
    assert!(docker(&["stop", "-t", "1", &bob]).0);
    assert!(docker(&["rm", "-f", &carol]).0);
    assert!(docker(&["volume", "rm", &farm.name("_carol_data")]).0);
    let plan = farm.plan().expect_code(2);
    assert!(
        plan.stdout.contains("has changed outside terrace"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("was deleted outside terrace"),
        "{}",
        plan.stdout
    );
    farm.apply();
    farm.plan().expect_code(0);
    let (_, running) = docker(&["inspect", "-f", "{{.State.Running}}", &bob]);
    assert_eq!(running.trim(), "true");
    let (ok, out) = login_from_app(&carol, "wordpress_carol");
    assert!(ok, "re-created carol cannot log in: {out}");

    // When the databases cannot be looked at (wrong admin password), nothing they depend
    // on is destroyed either: the database container and its volume stay.
    let blocked = farm
        .run_with_password(
            &["destroy", "--auto-approve", "--include-services"],
            "wrong-Pw-1",
        )
        .expect_code(1);
    assert!(
        blocked.stderr.contains("service.db could not be reached"),
        "{}",
        blocked.stderr
    );
    assert!(
        docker(&["inspect", &farm.name("-db")]).0,
        "database container destroyed"
    );
    assert!(
        docker(&["volume", "inspect", &farm.name("_db_data")]).0,
        "database volume destroyed"
    );
    // Destroy keeps the shared services (and their data) unless told otherwise.
    let run = farm.run(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(
        run.stdout.contains("Shared services are kept"),
        "{}",
        run.stdout
    );
    assert!(!docker(&["inspect", &alice]).0, "app container left behind");
    assert!(
        docker(&["inspect", &farm.name("-db")]).0,
        "shared database container was destroyed"
    );
    assert!(
        docker(&["volume", "inspect", &farm.name("_db_data")]).0,
        "shared data was destroyed"
    );
    farm.run(&["destroy", "--auto-approve", "--include-services"])
        .expect_code(0);
    assert!(!docker(&["inspect", &farm.name("-db")]).0);
    assert!(!docker(&["volume", "inspect", &farm.name("_db_data")]).0);
}

#[test]
fn memory_updates_in_place_and_a_replaced_app_keeps_its_volume_data() {
    let (farm, _cleanup) = Farm::new();
    let first = farm.apply();
    // The admin password is hidden at its key; the user beside it shows.
    assert!(
        first
            .stdout
            .contains("+ MARIADB_ADMIN_PASSWORD = (sensitive value)")
            && first
                .stdout
                .contains("+ MARIADB_ADMIN_USER     = \"terrace_admin\""),
        "{}",
        first.stdout
    );
    assert!(!first.stdout.contains(ADMIN_PASSWORD), "{}", first.stdout);
    let alice = farm.name("-alice");
    assert!(
        docker(&[
            "exec",
            &alice,
            "sh",
            "-c",
            "echo kept > /var/www/html/marker"
        ])
        .0
    );
    let (_, id_before) = docker(&["inspect", "-f", "{{.Id}}", &alice]);

    // Memory: in place, same container.
    let hcl = std::fs::read_to_string(farm.p.path().join("main.hcl")).unwrap();
    farm.p
        .write(&hcl.replace("alice = \"128m\"", "alice = \"160m\""));
    let plan = farm.plan().expect_code(2);
    assert!(
        plan.stdout.contains("will be updated in place"),
        "{}",
        plan.stdout
    );
    // In the unit written, everything else folded.
    assert!(
        plan.stdout.contains("~ memory = \"128m\" -> \"160m\"")
            && plan.stdout.contains("unchanged attributes hidden)"),
        "{}",
        plan.stdout
    );
    farm.apply();
    let (_, id_after) = docker(&["inspect", "-f", "{{.Id}} {{.HostConfig.Memory}}", &alice]);
    assert!(
        id_after.starts_with(id_before.trim()),
        "container was recreated"
    );
    assert!(
        id_after.contains(&(160 * 1024 * 1024).to_string()),
        "{id_after}"
    );

    // Command: replaced, with the reason; the volume and its data survive.
    let hcl = std::fs::read_to_string(farm.p.path().join("main.hcl")).unwrap();
    farm.p
        .write(&hcl.replace("[\"sleep\", \"infinity\"]", "[\"sleep\", \"999999\"]"));
    let plan = farm.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains("must be replaced (command cannot change in place)"),
        "{}",
        plan.stdout
    );
    farm.apply();
    farm.plan().expect_code(0);
    let (ok, out) = docker(&["exec", &alice, "cat", "/var/www/html/marker"]);
    assert!(ok && out.trim() == "kept", "volume data lost: {out}");

    // Replacing the database container and adding a client in one apply: the new
    // client's SQL waits for the restarted server instead of failing on dead connections.
    let hcl = std::fs::read_to_string(farm.p.path().join("main.hcl")).unwrap();
    let hcl = hcl
        .replace(
            "    memory   = \"512m\"",
            "    memory   = \"512m\"\n    labels   = { tier = \"db\" }",
        )
        .replace("carol = \"96m\"", "carol = \"96m\"\n    dave  = \"96m\"");
    farm.p.write(&hcl);
    let plan = farm.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains("# service.db.container must be replaced"),
        "{}",
        plan.stdout
    );
    // A new client's env: one line per key, only the password hidden.
    let flat = plan.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("+ DB_HOST = \"db\"") && flat.contains("+ DB_PASSWORD = (sensitive value)"),
        "{}",
        plan.stdout
    );
    farm.apply();
    farm.plan().expect_code(0);
    let (ok, out) = login_from_app(&farm.name("-dave"), "wordpress_dave");
    assert!(ok, "dave cannot reach his database: {out}");
    let (ok, out) = login_from_app(&alice, "wordpress_alice");
    assert!(
        ok,
        "alice's database did not survive the replacement: {out}"
    );
    let destroy = farm
        .run(&["destroy", "--auto-approve", "--include-services"])
        .expect_code(0);
    // Worded as a destroy: nothing left the configuration.
    assert!(
        destroy.stdout.contains("will be destroyed")
            && !destroy.stdout.contains("no longer in the configuration"),
        "{}",
        destroy.stdout
    );
    let again = farm
        .run(&["destroy", "--auto-approve", "--include-services"])
        .expect_code(0);
    assert!(
        again
            .stdout
            .contains("No changes. No objects need to be destroyed."),
        "{}",
        again.stdout
    );
}

#[test]
fn docker_objects_left_only_in_state_can_still_be_destroyed() {
    let name = format!("{}_v", unique("tfv").replace('_', ""));
    let _cleanup = Cleanup(name.clone());
    let p = Project::new(&format!("volume \"v\" {{\n  name = \"{name}\"\n}}\n"));
    p.apply();
    assert!(docker(&["volume", "inspect", &name]).0);
    // The configuration no longer mentions Docker at all; the state still does.
    p.write("");
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout.contains("# volume.v will be destroyed"),
        "{}",
        plan.stdout
    );
    p.apply();
    assert!(!docker(&["volume", "inspect", &name]).0);
}

#[test]
fn a_plan_that_over_fills_the_host_is_refused() {
    let (farm, _cleanup) = Farm::new();
    let plan = farm.plan().expect_code(2);
    assert!(
        plan.stdout.contains("Capacity: docker.local: 1.2 GiB of"),
        "{}",
        plan.stdout
    );
    // One client asking for more memory than any test machine has.
    let hcl = std::fs::read_to_string(farm.p.path().join("main.hcl")).unwrap();
    farm.p
        .write(&hcl.replace("bob   = \"96m\"", "bob   = \"4096g\""));
    let plan = farm.plan().expect_code(1);
    assert!(
        plan.stderr
            .contains("refusing a plan that over-fills a host"),
        "{}",
        plan.stderr
    );
    assert!(plan.stdout.contains("OVER-FULL"), "{}", plan.stdout);
    let apply = farm.run(&["apply", "--auto-approve"]).expect_code(1);
    assert!(apply.stderr.contains("over-fills"), "{}", apply.stderr);
    assert!(
        !docker(&["inspect", &farm.name("-db")]).0,
        "nothing was applied"
    );
}

/// A project with one proxy container named `name`, publishing `port`.
fn proxy_project(name: &str, port: u16) -> String {
    format!(
        r#"image "busybox" {{
  name = "terrace/busybox:1"
  pull = "never"
}}

service "proxy" {{
  engine = "container"
  # Replaced and destroyed by these tests (services are protected by default).
  lifecycle {{
    prevent_destroy = false
  }}
  container {{
    name    = "{name}"
    image   = image.busybox
    command = ["httpd", "-f", "-p", "80", "-h", "/"]
    ports   = ["127.0.0.1:{port}:80"]
  }}
}}
"#
    )
}

#[test]
fn a_volume_is_copied_before_it_is_destroyed_and_the_plan_says_where() {
    let prefix = unique("tfc").replace('_', "");
    let name = format!("{prefix}_v");
    let _cleanup = Cleanup(prefix);
    let p = Project::new(&format!("volume \"v\" {{\n  name = \"{name}\"\n}}\n"));
    p.apply();
    assert!(
        docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{name}:/data"),
            "terrace/busybox:1",
            "sh",
            "-c",
            "echo uploads > /data/a.txt"
        ])
        .0
    );
    p.write("");
    let dir = p.path().join(".terrace/backups");
    let plan = p.plan().expect_code(2);
    let promise = format!(
        "  # volume.v will be destroyed\n  # (it is no longer in the configuration)\n  \
         # (a copy of its data is written to {}/docker-volume-{name}-<time>.tar first; \
         if that fails, it is not destroyed)\n",
        dir.display()
    );
    assert!(plan.stdout.contains(&promise), "{}", plan.stdout);
    let json = p.terrace(&["plan", "--json"]).expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["safeguards"][0]["address"], "volume.v", "{v:#}");
    assert_eq!(v["safeguards"][0]["kind"], "copy", "{v:#}");

    let apply = p.apply();
    let path = apply
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Copied before destroying: "))
        .unwrap_or_else(|| panic!("no copy printed: {}", apply.stdout));
    assert!(path.starts_with(&dir.display().to_string()), "{path}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let out = Command::new("tar")
        .args(["-xOf", path, "./a.txt"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "uploads\n");
    assert!(!docker(&["volume", "inspect", &name]).0);
}

#[test]
fn a_container_renamed_by_hand_is_named_so_and_renamed_back() {
    let prefix = unique("tfr").replace('_', "");
    let name = format!("{prefix}-ren");
    let _cleanup = Cleanup(prefix);
    let p = Project::new(&proxy_project(&name, free_port()));
    p.apply();
    let (_, id) = docker(&["inspect", "-f", "{{.Id}}", &name]);
    let moved = format!("{name}-moved");
    assert!(docker(&["rename", &name, &moved]).0);
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout.contains(&format!(
            "# service.proxy.container was renamed to \"{moved}\" outside terrace"
        )),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("# service.proxy.container will be updated in place"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("deleted"), "{}", plan.stdout);
    p.apply();
    assert_eq!(docker(&["inspect", "-f", "{{.Id}}", &name]).1, id);
    p.plan().expect_code(0);
}

#[test]
fn a_container_replaced_by_hand_without_labels_is_a_conflict_not_a_deletion() {
    let prefix = unique("tfo").replace('_', "");
    let name = format!("{prefix}-own");
    let _cleanup = Cleanup(prefix);
    let p = Project::new(&proxy_project(&name, free_port()));
    p.apply();
    assert!(docker(&["rm", "-f", &name]).0);
    assert!(docker(&["create", "--name", &name, "terrace/busybox:1", "true"]).0);
    let plan = p.plan();
    assert!(
        plan.stdout.contains(&format!(
            "! service.proxy.container: the name \"{name}\" is held by container \"{name}\""
        )) && plan.stdout.contains("not created by terrace"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(&format!("docker rm -f {name}"))
            && plan
                .stdout
                .contains(&format!("terrace import service.proxy.container {name}")),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("deleted outside"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("# (it cannot be made: see the conflict below)"),
        "{}",
        plan.stdout
    );
    let apply = p.terrace(&["apply", "--auto-approve"]).expect_code(1);
    assert!(
        apply.stderr.contains("refusing to apply"),
        "{}",
        apply.stderr
    );
    let (_, hand_made) = docker(&["inspect", "-f", "{{.Id}}", &name]);

    // Adopted as the hint says: known by its id from then on, and replaced by one
    // made as configured (its command differs).
    p.terrace(&["state", "rm", "service.proxy.container"])
        .expect_code(0);
    p.terrace(&["import", "service.proxy.container", &name])
        .expect_code(0);
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains("# service.proxy.container must be replaced"),
        "{}",
        plan.stdout
    );
    p.apply();
    p.plan().expect_code(0);
    let (_, now) = docker(&[
        "inspect",
        "-f",
        "{{.Id}} {{index .Config.Labels \"terrace.managed\"}}",
        &name,
    ]);
    assert!(!now.starts_with(hand_made.trim()), "{now}");
    assert!(now.trim().ends_with(" true"), "{now}");
}

#[test]
fn moving_to_a_port_another_container_holds_is_refused_before_anything_is_destroyed() {
    let prefix = unique("tfp").replace('_', "");
    let name = format!("{prefix}-px");
    let _cleanup = Cleanup(prefix);
    let p = Project::new(&proxy_project(&name, free_port()));
    p.apply();
    let (_, id) = docker(&["inspect", "-f", "{{.Id}}", &name]);
    let taken = free_port();
    let holder = format!("{name}-holder");
    assert!(
        docker(&[
            "run",
            "-d",
            "--name",
            &holder,
            "-p",
            &format!("127.0.0.1:{taken}:80"),
            "terrace/busybox:1",
            "httpd",
            "-f",
            "-p",
            "80"
        ])
        .0
    );
    // Someone else's container on the engine is no alarm while nothing clashes with it.
    p.plan().expect_code(0);
    p.write(&proxy_project(&name, taken));
    let plan = p.plan();
    assert!(
        plan.stdout.contains(&format!(
            "host port {taken}/tcp is already published by container \"{holder}\""
        )),
        "{}",
        plan.stdout
    );
    let apply = p.terrace(&["apply", "--auto-approve"]).expect_code(1);
    assert!(
        apply
            .stderr
            .contains("1 conflict(s) block this plan; nothing was changed"),
        "{}",
        apply.stderr
    );
    let (_, after) = docker(&["inspect", "-f", "{{.Id}} {{.State.Running}}", &name]);
    assert_eq!(
        after.trim(),
        format!("{} true", id.trim()),
        "the working proxy was touched"
    );
}

#[test]
fn a_paused_container_is_drift_and_apply_unpauses_it() {
    let prefix = unique("tfz").replace('_', "");
    let name = format!("{prefix}-pz");
    let _cleanup = Cleanup(prefix);
    let p = Project::new(&proxy_project(&name, free_port()));
    p.apply();
    assert!(docker(&["pause", &name]).0);
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout.contains("paused") && plan.stdout.contains("false -> true"),
        "{}",
        plan.stdout
    );
    p.apply();
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Paused}}", &name])
            .1
            .trim(),
        "false"
    );
    p.plan().expect_code(0);
}

#[test]
fn limits_set_with_docker_update_are_drift_and_apply_makes_the_container_again() {
    let prefix = unique("tfl").replace('_', "");
    let name = format!("{prefix}-lim");
    let _cleanup = Cleanup(prefix);
    let port = free_port();
    let p = Project::new(&proxy_project(&name, port));
    p.apply();
    // By hand: one tenant throttled and capped, the way an operator would on the host.
    assert!(docker(&["update", "--cpus=0.25", "--pids-limit=20", &name]).0);
    let plan = p.plan().expect_code(2);
    // The capacity line names this machine's memory.
    let shown: String = plan
        .stdout
        .replace(&name, "NAME")
        .lines()
        .filter(|l| !l.starts_with("Capacity:"))
        .map(|l| format!("{l}\n"))
        .collect();
    expect![[r#"
        Objects changed outside terrace since the last apply (drift):

          # service.proxy.container has changed outside terrace
          ~ docker_container {
              ~ extra_limits = [
                  + --cpus=0.25
                  + --pids-limit=20
                ]
            }

        terrace will perform the following actions:

          # service.proxy.container must be replaced (extra_limits cannot change in place)
        -/+ docker_container {
              ~ extra_limits = [ # forces replacement
                  - "--cpus=0.25",
                  - "--pids-limit=20",
                ]
                name         = "NAME"
                # (7 unchanged attributes hidden)
            }

        Plan: 1 to add, 0 to change, 1 to destroy.
    "#]]
    .assert_eq(&shown);
    p.apply();
    let limits = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.NanoCpus}} {{json .HostConfig.PidsLimit}}",
        &name,
    ])
    .1;
    assert!(matches!(limits.trim(), "0 null" | "0 0"), "{limits}");
    p.plan().expect_code(0);
}

#[test]
fn a_network_re_created_under_a_stopped_container_is_repaired() {
    let prefix = unique("tfn").replace('_', "");
    let _cleanup = Cleanup(prefix.clone());
    let project = |running: bool| {
        format!(
            r#"image "busybox" {{
  name = "terrace/busybox:1"
  pull = "never"
}}

network "net" {{
  name = "{prefix}_net"
}}

service "app" {{
  engine = "container"
  # Replaced and destroyed by these tests (services are protected by default).
  lifecycle {{
    prevent_destroy = false
  }}
  container {{
    name     = "{prefix}-app"
    image    = image.busybox
    command  = ["httpd", "-f", "-p", "80", "-h", "/"]
    networks = [network.net]
    running  = {running}
  }}
}}
"#
        )
    };
    let p = Project::new(&project(true));
    p.apply();
    p.write(&project(false));
    p.apply();
    // By hand: the network goes away under the stopped container (terrace re-creates
    // it; the container's endpoint still names the old network's id).
    let net = format!("{prefix}_net");
    assert!(docker(&["network", "rm", &net]).0);
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains("# network.net was deleted outside terrace"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("# service.app.container has changed outside terrace")
            && plan
                .stdout
                .contains("the network was removed after the container joined it")
            && plan
                .stdout
                .contains("must be replaced (networks cannot change in place)"),
        "{}",
        plan.stdout
    );
    p.apply();
    p.plan().expect_code(0);
    p.write(&project(true));
    p.apply();
    p.plan().expect_code(0);
}

#[test]
fn a_container_deleted_by_hand_whose_port_was_taken_is_both_deleted_and_blocked() {
    let prefix = unique("tfd").replace('_', "");
    let _cleanup = Cleanup(prefix.clone());
    let name = format!("{prefix}-px");
    let port = free_port();
    let p = Project::new(&proxy_project(&name, port));
    p.apply();
    assert!(docker(&["rm", "-f", &name]).0);
    let holder = format!("{prefix}-holder");
    assert!(
        docker(&[
            "run",
            "-d",
            "--name",
            &holder,
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "terrace/busybox:1",
            "httpd",
            "-f",
            "-p",
            "80"
        ])
        .0
    );
    let plan = p.plan();
    // Both true: terrace's container is gone, and its port is someone else's now.
    assert!(
        plan.stdout
            .contains("# service.proxy.container was deleted outside terrace")
            && plan.stdout.contains(&format!(
                "host port {port}/tcp is already published by container \"{holder}\""
            )),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_replacement_whose_image_is_missing_is_refused_before_the_working_one_goes() {
    let prefix = unique("tfi").replace('_', "");
    let _cleanup = Cleanup(prefix.clone());
    let name = format!("{prefix}-px");
    let hcl = proxy_project(&name, free_port());
    let p = Project::new(&hcl);
    p.apply();
    let (_, id) = docker(&["inspect", "-f", "{{.Id}}", &name]);
    let missing = format!("terrace/{prefix}-missing:1");
    p.write(&hcl.replace("image.busybox", &format!("\"{missing}\"")));
    let plan = p.plan();
    assert!(
        plan.stdout.contains(&format!(
            "image \"{missing}\" is not on the engine, and nothing in this plan provides it"
        )),
        "{}",
        plan.stdout
    );
    p.terrace(&["apply", "--auto-approve"]).expect_code(1);
    let (_, after) = docker(&["inspect", "-f", "{{.Id}} {{.State.Running}}", &name]);
    assert_eq!(after.trim(), format!("{} true", id.trim()));
}
