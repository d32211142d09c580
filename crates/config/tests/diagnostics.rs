//! One test per diagnostic class: code, `file:line:col`, message and help.
mod common;

use common::{assert_report, load_err, render, single, PG};
use terrace_config::{ErrorKind, VarInputs};

#[test]
fn parse_error_is_located() {
    let e = single(
        &[(
            "main.hcl",
            "service \"pg\" {\n  engine = = \"postgres\"\n}\n",
        )],
        ErrorKind::Parse,
    );
    assert_report(
        &e,
        &["main.hcl:2:", "syntax error:", "help: check the HCL syntax"],
    );
    let loc = e.0[0].location().unwrap();
    assert!(loc.ends_with("main.hcl:2:12"), "{loc}");
}

#[test]
fn unknown_block_type_suggests() {
    let e = single(
        &[("main.hcl", "\n\nservce \"pg\" {}\n")],
        ErrorKind::UnknownBlock,
    );
    assert_report(
        &e,
        &[
            "main.hcl:3:1]",
            "unknown block type \"servce\"",
            "did you mean \"service\"?",
        ],
    );
}

#[test]
fn unknown_attribute_suggests() {
    let e = single(
        &[("a.hcl", PG), ("main.hcl", "database \"d\" {\n  service = service.pg\n  name    = \"d\"\n  conection_limit = 3\n}\n")],
        ErrorKind::UnknownAttribute,
    );
    assert_report(
        &e,
        &[
            "main.hcl:4:3]",
            "unknown attribute \"conection_limit\" in a database block",
            "did you mean \"connection_limit\"?",
        ],
    );
}

#[test]
fn unknown_attribute_inside_object_value() {
    let e = single(
        &[("main.hcl", "service \"pg\" {\n  engine   = \"postgres\"\n  endpoint = { address = \"h\", prot = 1 }\n  admin    = { user = \"a\", password = \"b\" }\n}\n")],
        ErrorKind::UnknownAttribute,
    );
    assert_report(
        &e,
        &[
            "main.hcl:3:31]",
            "unknown attribute \"prot\" in \"endpoint\"",
            "did you mean \"port\"?",
        ],
    );
}

#[test]
fn missing_required_attribute_points_at_block() {
    let e = single(
        &[
            ("a.hcl", PG),
            (
                "main.hcl",
                "\ndatabase \"d\" {\n  service = service.pg\n}\n",
            ),
        ],
        ErrorKind::MissingAttribute,
    );
    assert_report(
        &e,
        &[
            "main.hcl:2:1]",
            "missing required attribute \"name\"",
            "this database block has no \"name\"",
            "help: add `name = ...`",
        ],
    );
}

#[test]
fn wrong_type_for_connection_limit() {
    let e = single(
        &[("a.hcl", PG), ("main.hcl", "database \"d\" {\n  service          = service.pg\n  name             = \"d\"\n  connection_limit = \"ten\"\n}\n")],
        ErrorKind::WrongType,
    );
    assert_report(
        &e,
        &[
            "main.hcl:4:22]",
            "wrong type for \"connection_limit\": expected a number, found a string",
            "help: write it like `connection_limit = 10`",
        ],
    );
}

#[test]
fn wrong_type_for_service_reference() {
    let e = single(
        &[
            ("a.hcl", PG),
            (
                "main.hcl",
                "database \"d\" {\n  service = \"pg\"\n  name    = \"d\"\n}\n",
            ),
        ],
        ErrorKind::WrongType,
    );
    assert_report(
        &e,
        &[
            "main.hcl:2:13]",
            "expected a reference to a service block, found a string",
            "service = service.pg",
        ],
    );
}

#[test]
fn unknown_variable_reference_suggests() {
    let e = single(
        &[("a.hcl", PG), ("main.hcl", "variable \"db_name\" { default = \"x\" }\ndatabase \"d\" {\n  service = service.pg\n  name    = var.db_nam\n}\n")],
        ErrorKind::UnknownReference,
    );
    assert_report(
        &e,
        &[
            "main.hcl:4:13]",
            "no variable named \"db_nam\"",
            "did you mean \"db_name\"?",
        ],
    );
}

#[test]
fn unknown_references_of_every_kind() {
    let e = load_err(&[(
        "main.hcl",
        "locals {\n  a = local.nope\n  b = service.pgg.name\n  c = tenant.x\n  d = host.h\n  e = database.q\n  f = foo.bar\n  g = each.key\n}\n",
    )]);
    assert_eq!(e.len(), 7, "{}", render(&e));
    assert!(e.iter().all(|x| x.kind() == ErrorKind::UnknownReference));
    assert_report(
        &e,
        &[
            "no local value named \"nope\"",
            "no service named \"pgg\"",
            "no tenant named \"x\"",
            "no host named \"h\"",
            "no database named \"q\"",
            "unknown name \"foo\"",
            "`each` is only available in blocks with for_each",
            "main.hcl:7:7]",
        ],
    );
}

#[test]
fn unknown_function_suggests() {
    let e = single(
        &[("main.hcl", "locals {\n  a = lowr(\"X\")\n}\n")],
        ErrorKind::UnknownFunction,
    );
    assert_report(
        &e,
        &[
            "main.hcl:2:7]",
            "unknown function \"lowr\"",
            "did you mean \"lower\"?",
        ],
    );
}

#[test]
fn duplicate_name_labels_both_definitions() {
    let e = single(&[("a.hcl", PG), ("b.hcl", "\nservice \"pg\" {\n  engine = \"mysql\"\n  endpoint = { address = \"x\" }\n  admin = { user = \"a\", password = \"b\" }\n}\n")], ErrorKind::Duplicate);
    // The second definition is in b.hcl; the first (a.hcl:2:9) is named in the help.
    assert_report(
        &e,
        &[
            "b.hcl:2:9]",
            "service \"pg\" is defined twice",
            "defined again here",
            "a.hcl:2:9",
        ],
    );
}

#[test]
fn duplicate_database_name_on_one_service() {
    let e = single(
        &[("a.hcl", PG), ("main.hcl", "database \"a\" {\n  service = service.pg\n  name    = \"same\"\n}\ndatabase \"b\" {\n  service = service.pg\n  name    = \"same\"\n}\n")],
        ErrorKind::Duplicate,
    );
    assert_report(
        &e,
        &[
            "main.hcl:7:13]",
            "database \"same\" is declared twice on service \"pg\"",
            "first declared here",
            "declared again here",
        ],
    );
}

#[test]
fn invalid_identifier_from_for_each_points_at_name_expression() {
    let e = single(
        &[("a.hcl", PG), ("main.hcl", "tenant \"t\" {\n  for_each = toset([\"good\", \"bad-name\"])\n  database {\n    service = service.pg\n    name    = each.key\n  }\n}\n")],
        ErrorKind::InvalidIdentifier,
    );
    assert_report(
        &e,
        &[
            "main.hcl:5:15]",
            "invalid database name \"bad-name\": the name contains a hyphen",
            "use only ASCII letters, digits and underscores",
        ],
    );
}

#[test]
fn hostile_names_are_rejected() {
    for (hostile, what) in [
        ("a'; DROP DATABASE x; --", "a single quote"),
        ("wp`x", "a backtick"),
        ("tenant\\\"q", "a double quote"),
        ("ｗｐ", "non-ASCII character 'ｗ'"),
        ("a b", "a space"),
        ("1abc", "starts with a digit"),
    ] {
        for field in ["name", "user"] {
            let body = format!("database \"d\" {{\n  service = service.pg\n  name    = \"ok\"\n  {field} = \"{hostile}\"\n}}\n");
            let body = if field == "name" {
                body.replacen("  name    = \"ok\"\n", "", 1)
            } else {
                body
            };
            let e = single(
                &[("a.hcl", PG), ("main.hcl", &body)],
                ErrorKind::InvalidIdentifier,
            );
            assert_report(
                &e,
                &[
                    what,
                    "this value is not a valid SQL name",
                    "use only ASCII letters",
                ],
            );
        }
    }
}

#[test]
fn over_long_names_use_engine_limits() {
    let long64 = "a".repeat(64);
    let e = single(
        &[
            ("a.hcl", PG),
            (
                "main.hcl",
                &format!("database \"d\" {{\n  service = service.pg\n  name = \"{long64}\"\n}}\n"),
            ),
        ],
        ErrorKind::InvalidIdentifier,
    );
    assert_report(&e, &["64 bytes long, more than the 63 postgres allows"]);
    let maria = PG.replace("postgres", "mariadb");
    // 64 is fine for a MariaDB database name, and (defaulted) user name.
    common::load(&[
        ("a.hcl", &maria),
        (
            "main.hcl",
            &format!("database \"d\" {{\n  service = service.pg\n  name = \"{long64}\"\n}}\n"),
        ),
    ]);
}

#[test]
fn cycle_names_every_member() {
    let e = single(
        &[(
            "main.hcl",
            "locals {\n  a = local.b\n  b = local.c\n  c = \"${local.a}x\"\n}\n",
        )],
        ErrorKind::Cycle,
    );
    assert_report(
        &e,
        &[
            "main.hcl:2:7]",
            "dependency cycle: local.a -> local.b -> local.c -> local.a",
            "local.a refers to local.b",
            "local.c refers to local.a",
            "remove one of the references",
        ],
    );
}

#[test]
fn cycle_between_blocks() {
    let e = load_err(&[
        ("a.hcl", PG),
        ("main.hcl", "database \"x\" {\n  service = service.pg\n  name = database.y.name\n}\ndatabase \"y\" {\n  service = service.pg\n  name = database.x.name\n}\n"),
    ]);
    assert_eq!(e.len(), 1, "{}", render(&e));
    assert_report(
        &e,
        &["dependency cycle: database.x -> database.y -> database.x"],
    );
}

#[test]
fn evaluation_error_gets_the_expression_span() {
    let e = single(
        &[(
            "main.hcl",
            "locals {\n  m = { a = 1 }\n  b = local.m.missing\n}\n",
        )],
        ErrorKind::Eval,
    );
    assert_report(
        &e,
        &[
            "main.hcl:3:7]",
            "cannot evaluate expression: no such key: `missing`",
            "while evaluating this expression",
        ],
    );
}

#[test]
fn missing_variable_says_how_to_set_it() {
    let e = single(
        &[(
            "main.hcl",
            "variable \"pg_admin_password\" {\n  sensitive = true\n}\n",
        )],
        ErrorKind::MissingVariable,
    );
    assert_report(
        &e,
        &[
            "main.hcl:1:10]",
            "no value for variable \"pg_admin_password\"",
            "--var pg_admin_password=VALUE",
            "TERRACE_VAR_pg_admin_password",
        ],
    );
}

#[test]
fn charset_on_postgres_is_unsupported() {
    let e = single(
        &[("a.hcl", PG), ("main.hcl", "database \"d\" {\n  service = service.pg\n  name    = \"d\"\n  charset = \"utf8\"\n}\n")],
        ErrorKind::Unsupported,
    );
    assert_report(
        &e,
        &[
            "main.hcl:4:3]",
            "\"charset\" is not supported on postgres",
            "help: remove \"charset\"",
        ],
    );
}

#[test]
fn invalid_engine_and_port() {
    let e = load_err(&[(
        "main.hcl",
        "service \"pg\" {\n  engine   = \"postgress\"\n  endpoint = { address = \"h\", port = 70000 }\n  admin    = { user = \"a\", password = \"b\" }\n}\n",
    )]);
    assert_eq!(e.len(), 2, "{}", render(&e));
    assert_report(
        &e,
        &[
            "main.hcl:2:14]",
            "unknown engine \"postgress\"",
            "did you mean \"postgres\"?",
            "main.hcl:3:38]",
            "must be a whole number from 1 to 65535",
        ],
    );
}

#[test]
fn independent_errors_are_all_reported() {
    let e = load_err(&[
        ("a.hcl", PG),
        (
            "main.hcl",
            "databse \"x\" {}\ndatabase \"d\" {\n  service = service.pg\n  name = \"bad name\"\n}\nhost \"h\" {\n  adress = \"x\"\n}\nlocals {\n  z = var.zz\n}\n",
        ),
    ]);
    let kinds: Vec<ErrorKind> = e.iter().map(|x| x.kind()).collect();
    assert_eq!(
        kinds,
        vec![
            ErrorKind::UnknownBlock,
            ErrorKind::InvalidIdentifier,
            ErrorKind::MissingAttribute,
            ErrorKind::UnknownAttribute,
            ErrorKind::UnknownReference
        ],
        "{}",
        render(&e)
    );
    assert_report(&e, &["5 errors in the configuration"]);
}

#[test]
fn var_file_errors_point_into_the_var_file() {
    let dir = common::Dir::new(&[("main.hcl", "variable \"n\" { type = number }\n")]);
    std::fs::write(dir.path("x.tfvars"), "\nn = \"many\"\n").unwrap();
    let e = dir
        .load(&VarInputs {
            var_files: vec![dir.path("x.tfvars")],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.len(), 1);
    assert_report(
        &e,
        &[
            "x.tfvars:2:5]",
            "invalid value for variable \"n\": expected a number, found the string \"many\"",
        ],
    );
}

#[test]
fn wrong_label_count_and_bad_label() {
    let e = load_err(&[(
        "main.hcl",
        "host {\n  address = \"x\"\n}\nhost \"bad name\" {\n  address = \"y\"\n}\n",
    )]);
    assert_eq!(e.len(), 2, "{}", render(&e));
    assert!(e.iter().all(|x| x.kind() == ErrorKind::InvalidLabel));
    assert_report(
        &e,
        &[
            "main.hcl:1:1]",
            "a host block takes 1 label, found 0",
            "main.hcl:4:6]",
            "invalid host name \"bad name\"",
        ],
    );
}

#[test]
fn a_missing_provider_schema_is_reported_before_anything_is_read() {
    let dir = common::Dir::new(&[("main.hcl", "locals { a = 1 }\n")]);
    let e = terrace_config::load_dir(dir.dir.path(), &VarInputs::default(), &|t| {
        common::schemas(t).filter(|s| s.type_name != "host_command")
    })
    .unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e.0[0].kind(), ErrorKind::Unsupported);
    assert_report(
        &e,
        &["no provider schema for the resource types host_command"],
    );
}
