//! End to end against the real local Redis 7: tenants' ACL users created by the real
//! binary, isolation proven by real logins (`redis-cli`, password in `REDISCLI_AUTH`,
//! never in argv), drift of a hand-widened key pattern reported and repaired.

mod common;

use std::process::Command;

use common::{unique, Project};

fn project_hcl(tenants: &[&str]) -> String {
    let list: Vec<String> = tenants.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        r#"
variable "redis_admin_password" {{
  type      = string
  sensitive = true
}}
service "cache" {{
  engine   = "redis"
  endpoint = {{ address = "127.0.0.1", port = 6379 }}
  admin    = {{ user = "terrace_admin", password = var.redis_admin_password }}
}}
tenant "client" {{
  for_each = toset([{}])
  redis {{
    service = service.cache
    prefix  = "${{each.key}}:"
  }}
}}
"#,
        list.join(", ")
    )
}

/// Runs `redis-cli` as `user` (password through the environment); stdout and stderr.
fn cli(user: &str, password: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args([
            "--no-auth-warning",
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "--user",
            user,
        ])
        .args(args)
        .env("REDISCLI_AUTH", password)
        .output()
        .expect("redis-cli");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn admin(args: &[&str]) -> String {
    let pw = std::env::var("TERRACE_VAR_redis_admin_password").expect("source target/services.env");
    cli("terrace_admin", &pw, args)
}

#[test]
fn tenants_get_confined_users_and_a_widened_pattern_is_drift_that_apply_repairs() {
    let a = unique("ra");
    let b = unique("rb");
    let p = Project::new(&project_hcl(&[&a, &b]));
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{}",
        plan.stdout
    );
    let applied = p.apply();
    p.plan().expect_code(0);

    let user = |t: &str| format!("client_{t}");
    let password = |t: &str| {
        p.state_attrs(&format!("tenant.client[\"{t}\"].redis"))["password"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (pa, pb) = (password(&a), password(&b));
    // Secrets never in the plan or apply output.
    for out in [&plan.all(), &applied.all()] {
        assert!(!out.contains(&pa) && !out.contains(&pb), "{out}");
    }
    // Each tenant writes and reads its own keys, and gets NOPERM on the other's.
    for (me, pw, other) in [(&a, &pa, &b), (&b, &pb, &a)] {
        let own = format!("{me}:k");
        assert_eq!(cli(&user(me), pw, &["SET", &own, "v"]).trim(), "OK");
        assert_eq!(cli(&user(me), pw, &["GET", &own]).trim(), "v");
        for args in [
            vec!["GET".to_string(), format!("{other}:k")],
            vec!["SET".into(), format!("{other}:k"), "x".into()],
            vec!["MGET".into(), own.clone(), format!("{other}:k")],
            vec!["SCAN".into(), "0".into()],
            vec!["KEYS".into(), "*".into()],
            vec!["FLUSHALL".into()],
            vec!["CONFIG".into(), "GET".into(), "*".into()],
            vec!["ACL".into(), "LIST".into()],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = cli(&user(me), pw, &args);
            assert!(out.contains("NOPERM"), "{args:?}: {out}");
        }
    }

    // Widened by hand: the plan names the attribute; apply repairs it.
    admin(&["ACL", "SETUSER", &user(&a), "~*"]);
    let drift = p.plan().expect_code(2);
    assert!(drift.stdout.contains("key_patterns"), "{}", drift.stdout);
    assert!(!drift.all().contains(&pa));
    p.apply();
    p.plan().expect_code(0);
    let out = cli(&user(&a), &pa, &["GET", &format!("{b}:k")]);
    assert!(out.contains("NOPERM"), "{out}");

    // Removing a tenant deletes its user.
    p.write(&project_hcl(&[&a]));
    p.apply();
    assert!(!admin(&["ACL", "USERS"]).lines().any(|l| l == user(&b)));
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(!admin(&["ACL", "USERS"]).lines().any(|l| l == user(&a)));
    admin(&["DEL", &format!("{a}:k"), &format!("{b}:k")]);
}
