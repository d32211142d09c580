//! Expiry end to end against the real local MariaDB: clones added with `terrace
//! instance add` (one file each), created, expired by moving the clock (`--now`),
//! dumped and dropped by a scheduled `apply --auto-approve`, and never created again
//! while the configuration still lists them; concurrent `instance add`s all survive.

mod common;

use common::{block_on, mysql_admin, mysql_service, unique, Project};
use sqlx::Row;

fn project_hcl() -> String {
    format!(
        r#"{}
variable "clones" {{
  type      = map(object({{ ttl = string }}))
  directory = "clones.d"
}}
tenant "clone" {{
  for_each = var.clones
  database {{
    service = service.db
    name    = "wp_${{each.key}}"
    user    = "u_${{each.key}}"
  }}
  lifecycle {{
    ttl = each.value.ttl
  }}
}}
"#,
        mysql_service()
    )
}

async fn exists(db: &str) -> bool {
    let pool = mysql_admin().await;
    sqlx::query("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?")
        .bind(db)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get::<i64, _>(0)
        == 1
}

fn at(p: &Project, now: &str, args: &[&str]) -> common::Run {
    p.terrace_env(args, &[("TERRACE_NOW", now)])
}

#[test]
fn clones_expire_are_dumped_and_dropped_and_never_come_back() {
    let a = unique("xa");
    let b = unique("xb");
    let p = Project::new(&project_hcl());
    p.terrace(&["instance", "add", "clones", &a, "--ttl", "48h"])
        .expect_code(0);
    p.terrace(&["instance", "add", "clones", &b, "--ttl", "96h"])
        .expect_code(0);
    // The same name twice is refused: the first file stays as it was.
    let again = p
        .terrace(&["instance", "add", "clones", &a, "--ttl", "1h"])
        .expect_code(1);
    assert!(again.all().contains("exists already"), "{}", again.all());

    // Created at T0: the ttl counts from there.
    let t0 = "2029-06-01T00:00:00Z";
    at(&p, t0, &["apply", "--auto-approve"]).expect_code(0);
    assert!(block_on(exists(&format!("wp_{a}"))));
    assert!(block_on(exists(&format!("wp_{b}"))));
    let key_a = format!("tenant.clone[\"{a}\"]");
    let key_b = format!("tenant.clone[\"{b}\"]");
    assert_eq!(p.state()["first_created"][&key_a], t0);
    assert_eq!(p.state()["first_created"][&key_b], t0);

    // A day later a expires within the horizon: the plan says so, and changes nothing.
    let soon = at(&p, "2029-06-02T01:00:00Z", &["plan", "--detailed-exitcode"]).expect_code(0);
    assert!(
        soon.stdout.contains(&format!(
            "# {key_a} expires at 2029-06-03T00:00:00Z (ttl 48h from its creation at {t0})"
        )),
        "{}",
        soon.stdout
    );

    // The cleanup job, after a's end: a is dumped and dropped, b stays.
    let t1 = "2029-06-03T02:00:00Z";
    let cleanup = at(&p, t1, &["apply", "--auto-approve"]).expect_code(0);
    let out = cleanup.stdout;
    assert!(out.contains("# (expired at 2029-06-03T00:00:00Z)"), "{out}");
    assert!(out.contains("Dumped before dropping:"), "{out}");
    assert!(
        out.contains(&format!(
            "Expired: {key_a} (expired at 2029-06-03T00:00:00Z): 3 object(s) removed; the configuration still lists it: remove it."
        )),
        "{out}"
    );
    assert!(!block_on(exists(&format!("wp_{a}"))));
    assert!(block_on(exists(&format!("wp_{b}"))));
    let dumps: Vec<String> = std::fs::read_dir(p.path().join(".terrace/backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        dumps.iter().any(|d| d.contains(&format!("wp_{a}"))),
        "{dumps:?}"
    );

    // No resurrection: the next plan creates nothing and says the configuration still
    // lists a.
    let replan = at(&p, t1, &["plan", "--detailed-exitcode"]).expect_code(0);
    assert!(
        replan.stdout.contains(&format!(
            "# {key_a} expired at 2029-06-03T00:00:00Z (ttl 48h from its creation at {t0}); the configuration still lists it: remove it (terrace will not create it again)"
        )),
        "{}",
        replan.stdout
    );
    assert!(replan.stdout.contains("No changes."), "{}", replan.stdout);
    let json = at(&p, t1, &["plan", "--json"]).expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["expiry"][0]["instance"], key_a.as_str());
    assert_eq!(doc["expiry"][0]["expired"], true);

    // Later b expires too; a still does not come back.
    let late = at(&p, "2029-06-10T00:00:00Z", &["apply", "--auto-approve"]).expect_code(0);
    assert!(
        late.stdout.contains("0 added, 0 changed, 3 destroyed"),
        "{}",
        late.stdout
    );
    assert!(!block_on(exists(&format!("wp_{b}"))));

    // Removing the instance files forgets their creation times.
    p.terrace(&["instance", "rm", "clones", &a]).expect_code(0);
    p.terrace(&["instance", "rm", "clones", &b]).expect_code(0);
    at(&p, "2029-06-10T00:00:00Z", &["apply", "--auto-approve"]).expect_code(0);
    assert!(p.state().get("first_created").is_none(), "{:#}", p.state());
    let rm = p.terrace(&["instance", "rm", "clones", &a]).expect_code(1);
    assert!(rm.all().contains("has no instance"), "{}", rm.all());
}

#[test]
fn concurrent_instance_adds_all_survive() {
    let p = Project::new(&project_hcl());
    let names: Vec<String> = (0..12).map(|i| unique(&format!("cc{i}"))).collect();
    let bin = env!("CARGO_BIN_EXE_terrace");
    // Every add at once, as separate processes; plus six racing for one name.
    let contested = unique("same");
    let mut children: Vec<std::process::Child> = names
        .iter()
        .chain(std::iter::repeat_n(&contested, 6))
        .map(|n| {
            std::process::Command::new(bin)
                .arg("-C")
                .arg(p.path())
                .args(["instance", "add", "clones", n, "--ttl", "2h"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .iter_mut()
        .map(|c| c.wait().unwrap().code().unwrap())
        .collect();
    assert!(codes[..12].iter().all(|c| *c == 0), "{codes:?}");
    assert_eq!(
        codes[12..].iter().filter(|c| **c == 0).count(),
        1,
        "{codes:?}"
    );
    let listed = p.terrace(&["instance", "list", "clones"]).expect_code(0);
    let mut expected: Vec<String> = names.clone();
    expected.push(contested);
    expected.sort();
    let got: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(got, expected);
    // No temporary file is left behind, and the project reads every instance.
    let leftovers: Vec<_> = std::fs::read_dir(p.path().join("clones.d"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .collect();
    assert!(leftovers.is_empty());
    p.terrace(&["validate"]).expect_code(0);
}
