//! `apply --json` / `destroy --json` (one JSON event per line) and the plain progress
//! lines of a piped apply, against the real local PostgreSQL.

mod common;

use common::{pg_service, unique, Project};
use serde_json::Value;

/// One tenant database: a user, its database and the grant, applied in that order (each
/// depends on the one before), so the step order is fixed.
fn project(name: &str) -> Project {
    Project::new(&format!(
        r#"{}
tenant "app" {{
  for_each = toset(["{name}"])
  database {{
    service = service.pg
    name    = each.key
  }}
}}
"#,
        pg_service()
    ))
}

/// Every stdout line parsed as JSON (panics on any other line), with the keys every
/// event has checked.
fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| {
            let e: Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line:?}\n{stdout}"));
            for key in ["@level", "@message", "@module", "@timestamp", "type"] {
                assert!(e[key].is_string(), "{key} missing in {line}");
            }
            assert_eq!(e["@module"], "terrace.ui");
            e
        })
        .collect()
}

/// `type` of each event, with the address for per-resource events:
/// `apply_start tenant.app["x"].database.user`.
fn sequence(events: &[Value], name: &str) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let kind = e["type"].as_str().unwrap();
            let addr = e["hook"]["resource"]["addr"]
                .as_str()
                .or(e["change"]["resource"]["addr"].as_str());
            match addr {
                Some(a) => format!("{kind} {}", a.replace(name, "NAME")),
                None => kind.to_string(),
            }
        })
        .collect()
}

#[test]
fn apply_and_destroy_json_stream_one_event_per_line() {
    let name = unique("ev");
    let p = project(&name);
    let admin = std::env::var("TERRACE_VAR_pg_admin_password").unwrap();

    let run = p
        .terrace(&["apply", "--json", "--auto-approve"])
        .expect_code(0);
    let all = events(&run.stdout);
    assert_eq!(
        sequence(&all, &name),
        [
            "version",
            r#"planned_change tenant.app["NAME"].database"#,
            r#"planned_change tenant.app["NAME"].database.grant"#,
            r#"planned_change tenant.app["NAME"].database.user"#,
            "change_summary",
            r#"apply_start tenant.app["NAME"].database.user"#,
            r#"apply_complete tenant.app["NAME"].database.user"#,
            r#"apply_start tenant.app["NAME"].database"#,
            r#"apply_complete tenant.app["NAME"].database"#,
            r#"apply_start tenant.app["NAME"].database.grant"#,
            r#"apply_complete tenant.app["NAME"].database.grant"#,
            "change_summary",
            "outcome",
        ],
        "{}",
        run.stdout
    );
    assert_eq!(all[0]["ui"], "1.0");
    let plan_summary = &all[4];
    assert_eq!(plan_summary["changes"]["operation"], "plan");
    assert_eq!(plan_summary["changes"]["add"], 3);
    assert_eq!(
        plan_summary["@message"],
        "Plan: 3 to add, 0 to change, 0 to destroy."
    );
    let start = &all[5];
    assert_eq!(start["hook"]["action"], "create");
    assert_eq!(start["hook"]["resource"]["resource_type"], "sql_user");
    assert_eq!(start["hook"]["resource"]["provider"], "service.pg");
    assert!(start["@message"]
        .as_str()
        .unwrap()
        .ends_with(": Creating..."));
    assert!(all[6]["hook"]["elapsed_seconds"].is_number());
    let summary = &all[11];
    assert_eq!(summary["changes"]["operation"], "apply");
    assert_eq!(summary["changes"]["add"], 3);
    assert_eq!(
        summary["@message"],
        "Apply complete! Resources: 3 added, 0 changed, 0 destroyed."
    );
    let outcome = &all[12]["outcome"];
    assert_eq!(outcome["result"], "success");
    assert_eq!(outcome["exit_code"], 0);
    assert!(outcome["elapsed_seconds"].as_f64().unwrap() > 0.0);
    // Secrets: neither the admin password nor the generated one.
    let password = p.state_attrs(&format!("tenant.app[\"{name}\"].database.user"))["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!run.stdout.contains(&admin) && !run.stdout.contains(&password));

    // Nothing to do: still a complete stream.
    let again = p
        .terrace(&["apply", "--json", "--auto-approve"])
        .expect_code(0);
    assert_eq!(
        sequence(&events(&again.stdout), &name),
        ["version", "change_summary", "change_summary", "outcome"]
    );

    let destroy = p
        .terrace(&["destroy", "--json", "--auto-approve"])
        .expect_code(0);
    let all = events(&destroy.stdout);
    // The dump taken before the database is dropped is announced as a `log` event.
    let (logs, rest): (Vec<Value>, Vec<Value>) = all.into_iter().partition(|e| e["type"] == "log");
    assert!(
        logs.iter().any(|l| l["@message"]
            .as_str()
            .unwrap()
            .starts_with("Dumped before dropping: ")),
        "{}",
        destroy.stdout
    );
    assert_eq!(
        sequence(&rest, &name),
        [
            "version",
            r#"planned_change tenant.app["NAME"].database"#,
            r#"planned_change tenant.app["NAME"].database.grant"#,
            r#"planned_change tenant.app["NAME"].database.user"#,
            "change_summary",
            r#"apply_start tenant.app["NAME"].database.grant"#,
            r#"apply_complete tenant.app["NAME"].database.grant"#,
            r#"apply_start tenant.app["NAME"].database"#,
            r#"apply_complete tenant.app["NAME"].database"#,
            r#"apply_start tenant.app["NAME"].database.user"#,
            r#"apply_complete tenant.app["NAME"].database.user"#,
            "change_summary",
            "outcome",
        ],
        "{}",
        destroy.stdout
    );
    assert_eq!(rest[5]["hook"]["action"], "delete");
    assert!(rest[6]["@message"]
        .as_str()
        .unwrap()
        .contains("Destruction complete after"));
    assert_eq!(rest[11]["changes"]["operation"], "destroy");
    assert_eq!(rest[11]["changes"]["remove"], 3);
}

/// A step the server refuses: `apply_errored` and its diagnostic, the dependents
/// skipped, the summary of what was done, and a failed outcome, exit 1.
#[test]
fn a_failed_step_is_an_errored_event_and_a_failed_outcome() {
    let bad = unique("evbad");
    // Valid to terrace, refused by the server at apply time: "public" is a reserved role.
    let p = Project::new(&format!(
        "{}\ndatabase \"bad\" {{\n  service = service.pg\n  name = \"{bad}\"\n  user = \"public\"\n}}\n",
        pg_service()
    ));
    let run = p
        .terrace(&["apply", "--json", "--auto-approve"])
        .expect_code(1);
    let all = events(&run.stdout);
    let kinds: Vec<String> = sequence(&all, &bad);
    let tail: Vec<&str> = kinds.iter().skip(5).map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "apply_start database.bad.user",
            "apply_errored database.bad.user",
            "diagnostic",
            "apply_skipped database.bad",
            "apply_skipped database.bad.grant",
            "change_summary",
            "outcome",
        ],
        "{}",
        run.stdout
    );
    let errored = &all[6];
    assert_eq!(errored["@level"], "error");
    let diagnostic = &all[7]["diagnostic"];
    assert_eq!(diagnostic["severity"], "error");
    assert_eq!(diagnostic["address"], "database.bad.user");
    assert!(!diagnostic["summary"].as_str().unwrap().is_empty());
    assert_eq!(all[10]["changes"]["add"], 0);
    assert_eq!(all[11]["outcome"]["result"], "failed");
    assert_eq!(all[11]["outcome"]["exit_code"], 1);
}

/// An error before anything is applied still ends the stream with a diagnostic and an
/// outcome, and stdout holds nothing but JSON lines.
#[test]
fn an_error_before_applying_is_a_diagnostic_and_an_error_outcome() {
    let p = Project::new("service \"pg\" {\n  engine = \"nope\"\n}\n");
    let run = p
        .terrace(&["apply", "--json", "--auto-approve"])
        .expect_code(1);
    let all = events(&run.stdout);
    let kinds: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["version", "diagnostic", "outcome"],
        "{}",
        run.stdout
    );
    assert!(all[1]["diagnostic"]["summary"]
        .as_str()
        .unwrap()
        .contains("unknown engine"));
    assert_eq!(all[2]["outcome"]["result"], "error");

    // Refused without --auto-approve: nobody can answer a prompt inside a stream.
    let run = p.terrace(&["apply", "--json"]).expect_code(1);
    let all = events(&run.stdout);
    assert!(all[0]["diagnostic"]["summary"]
        .as_str()
        .unwrap()
        .contains("--auto-approve"));
}

/// Piped (not a terminal), an apply prints one plain line per step start and end, with
/// its duration, then the summary with counts and the total duration.
#[test]
fn a_piped_apply_prints_plain_progress_lines_and_a_summary() {
    let name = unique("prog");
    let p = project(&name);
    let run = p.apply();
    let start = run
        .stdout
        .find(&format!(
            "tenant.app[\"{name}\"].database.user: Creating..."
        ))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    let masked = mask(&run.stdout[start..], &name);
    expect_test::expect![[r#"
        tenant.app["NAME"].database.user: Creating...
        tenant.app["NAME"].database.user: Creation complete after N.Ns
        tenant.app["NAME"].database: Creating...
        tenant.app["NAME"].database: Creation complete after N.Ns
        tenant.app["NAME"].database.grant: Creating...
        tenant.app["NAME"].database.grant: Creation complete after N.Ns

        Apply complete! Resources: 3 added, 0 changed, 0 destroyed. Took N.Ns.
    "#]]
    .assert_eq(&masked);
    assert!(run.stderr.is_empty(), "no bar when piped: {}", run.stderr);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

/// Durations as `N.N`, the unique name as NAME.
fn mask(text: &str, name: &str) -> String {
    let text = text.replace(name, "NAME");
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut number = c.to_string();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_digit() || d == '.' {
                    number.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            if number.contains('.') && chars.peek() == Some(&'s') {
                out.push_str("N.N");
            } else {
                out.push_str(&number);
            }
        } else {
            out.push(c);
        }
    }
    out
}
