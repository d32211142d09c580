//! Located diagnostics for hosts and the blocks placed on them.
mod common;

use common::{assert_report, load_err, render, single, Dir};
use terrace_config::{ConfigErrors, ErrorKind, VarInputs};

const WEB1: &str = "host \"web1\" { address = \"10.0.0.10\" }\n";

/// `main.hcl` is WEB1 followed by `rest` (so `rest` starts on line 2).
fn with_web1(rest: &str) -> Vec<(&'static str, String)> {
    vec![("main.hcl", format!("{WEB1}{rest}"))]
}

fn single_web1(rest: &str, kind: ErrorKind) -> ConfigErrors {
    let files = with_web1(rest);
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    single(&files, kind)
}

#[test]
fn missing_host() {
    let e = single_web1(
        "package \"nginx\" {\n  state = \"present\"\n}\n",
        ErrorKind::MissingAttribute,
    );
    assert_report(
        &e,
        &[
            "main.hcl:2:1]",
            "missing required attribute \"host\"",
            "this package block has no \"host\"",
            "help: add `host = ...` to the block",
        ],
    );
}

#[test]
fn host_that_is_not_a_host_reference() {
    let e = single_web1(
        "package \"nginx\" {\n  host = \"web1\"\n}\n",
        ErrorKind::WrongType,
    );
    assert_report(
        &e,
        &[
            "main.hcl:3:10]",
            "wrong type for \"host\": expected a reference to a host block, found a string",
            "help: write it like `host = host.db1`",
        ],
    );
}

#[test]
fn content_and_source_both_set() {
    let e = single_web1(
        "file \"f\" {\n  host    = host.web1\n  path    = \"/etc/f\"\n  content = \"x\"\n  source  = \"f.tpl\"\n}\n",
        ErrorKind::InvalidValue,
    );
    assert_report(
        &e,
        &[
            "main.hcl:6:3]",
            "\"content\" and \"source\" are both set",
            "source set here",
            "content set here",
            "help: a file's content comes from exactly one of them",
        ],
    );
}

#[test]
fn neither_content_nor_source() {
    let e = single_web1(
        "file \"f\" {\n  host = host.web1\n  path = \"/etc/f\"\n}\n",
        ErrorKind::MissingAttribute,
    );
    assert_report(
        &e,
        &[
            "main.hcl:2:1]",
            "missing \"content\" or \"source\"",
            "this file block has neither content nor source",
            "help: add `content = \"...\"` for inline content, or `source =",
        ],
    );
}

#[test]
fn missing_template_file() {
    let e = single_web1(
        "file \"f\" {\n  host   = host.web1\n  path   = \"/etc/f\"\n  source = \"templates/missing.conf\"\n}\n",
        ErrorKind::Io,
    );
    assert_report(
        &e,
        &[
            "main.hcl:5:12]",
            "cannot read template \"templates/missing.conf\"",
            "no such file",
            "help: `source` is a template file, relative to the configuration directory",
        ],
    );
}

#[test]
fn missing_template_file_with_a_path_from_each() {
    let e = single_web1(
        "file \"f\" {\n  for_each = toset([\"a\"])\n  host     = host.web1\n  path     = \"/etc/${each.key}\"\n  source   = \"templates/${each.key}.conf\"\n}\n",
        ErrorKind::Io,
    );
    assert_report(
        &e,
        &[
            "main.hcl:6:14]",
            "cannot read template \"templates/a.conf\"",
            "no such file",
        ],
    );
}

#[test]
fn unknown_reference_in_a_template_points_into_the_template() {
    let dir = Dir::new(&[(
        "main.hcl",
        &format!("{WEB1}file \"f\" {{\n  host   = host.web1\n  path   = \"/etc/f\"\n  source = \"f.tpl\"\n}}\n"),
    )]);
    std::fs::write(
        dir.path("f.tpl"),
        "listen ${host.web1.address}\nname ${var.nmae}\n",
    )
    .unwrap();
    let e = dir.load(&VarInputs::default()).unwrap_err();
    assert_eq!(e.len(), 1, "{}", render(&e));
    assert_eq!(e.0[0].kind(), ErrorKind::UnknownReference);
    assert_report(
        &e,
        &["f.tpl:2:8]", "no variable named \"nmae\"", "not declared"],
    );
}

#[test]
fn template_syntax_error_points_into_the_template() {
    let dir = Dir::new(&[(
        "main.hcl",
        &format!("{WEB1}file \"f\" {{\n  host   = host.web1\n  path   = \"/etc/f\"\n  source = \"f.tpl\"\n}}\n"),
    )]);
    std::fs::write(dir.path("f.tpl"), "ok\nbroken ${host.web1.address\n").unwrap();
    let e = dir.load(&VarInputs::default()).unwrap_err();
    assert_eq!(e.len(), 1, "{}", render(&e));
    assert_eq!(e.0[0].kind(), ErrorKind::Parse);
    assert_report(
        &e,
        &[
            "f.tpl:2:",
            "syntax error in template",
            "help: a template is text with",
        ],
    );
}

#[test]
fn relative_file_path() {
    let e = single_web1(
        "file \"f\" {\n  host    = host.web1\n  path    = \"etc/f\"\n  content = \"x\"\n}\n",
        ErrorKind::InvalidValue,
    );
    assert_report(
        &e,
        &[
            "main.hcl:4:13]",
            "invalid path \"etc/f\": not an absolute path",
            "help: a file's path on the host is absolute",
        ],
    );
}

#[test]
fn bad_modes() {
    for (mode, shown) in [
        ("\"999\"", "\"999\""),
        ("\"rw\"", "\"rw\""),
        ("6.44", "6.44"),
    ] {
        let e = single_web1(
            &format!("file \"f\" {{\n  host    = host.web1\n  path    = \"/etc/f\"\n  content = \"x\"\n  mode    = {mode}\n}}\n"),
            ErrorKind::InvalidValue,
        );
        assert_report(
            &e,
            &[
                "main.hcl:6:13]",
                &format!("invalid file mode {shown}"),
                "not an octal file mode",
                "help: write the mode as three or four octal digits",
            ],
        );
    }
}

#[test]
fn invalid_allow_from_entries() {
    let e = load_err(&[(
        "main.hcl",
        "host \"db\" { address = \"db.internal\" }\nfirewall_rule \"r\" {\n  host       = host.db\n  port       = 3306\n  allow_from = [\"10.0.0.0/24\", \"10.0.0.300\", host.db.address, \"10.0.0.1/24\"]\n}\n",
    )]);
    assert_eq!(e.len(), 3, "{}", render(&e));
    assert!(e.iter().all(|x| x.kind() == ErrorKind::InvalidValue));
    assert_report(
        &e,
        &[
            "main.hcl:5:32]",
            "invalid allow_from[1] \"10.0.0.300\": not an IP address or CIDR network",
            "invalid allow_from[2] \"db.internal\"",
            "invalid allow_from[3] \"10.0.0.1/24\": the network has host bits set; did you mean \"10.0.0.0/24\"?",
            "help: allow_from takes IPv4 or IPv6 addresses and networks",
        ],
    );
}

#[test]
fn port_out_of_range() {
    let e = single_web1(
        "firewall_rule \"r\" {\n  host       = host.web1\n  port       = 70000\n  allow_from = [\"10.0.0.0/8\"]\n}\n",
        ErrorKind::InvalidValue,
    );
    assert_report(
        &e,
        &[
            "main.hcl:4:16]",
            "invalid value for \"port\": 70000",
            "out of range",
            "help: \"port\" must be a whole number from 1 to 65535",
        ],
    );
}

#[test]
fn unknown_proto_suggests() {
    let e = single_web1(
        "firewall_rule \"r\" {\n  host       = host.web1\n  port       = 53\n  proto      = \"udpp\"\n  allow_from = []\n}\n",
        ErrorKind::InvalidValue,
    );
    assert_report(
        &e,
        &[
            "main.hcl:5:16]",
            "invalid value for \"proto\": \"udpp\"",
            "did you mean \"udp\"?",
        ],
    );
}

#[test]
fn restart_on_items_that_are_not_files_are_each_located() {
    let e = load_err(&[(
        "main.hcl",
        &format!("{WEB1}package \"nginx\" {{ host = host.web1 }}\nfile \"site\" {{\n  host    = host.web1\n  path    = \"/etc/nginx/site\"\n  content = \"x\"\n}}\ndaemon \"nginx\" {{\n  host       = host.web1\n  restart_on = [file.site, package.nginx, \"/etc/other\"]\n}}\n"),
    )]);
    assert_eq!(e.len(), 2, "{}", render(&e));
    assert!(e.iter().all(|x| x.kind() == ErrorKind::WrongType));
    assert_report(
        &e,
        &[
            "main.hcl:10:28]",
            "restart_on[1] is not a file reference: found an object",
            "a package reference, not a file",
            "restart_on[2] is not a file reference: found a string",
            "help: restart_on lists the file blocks the service reads",
        ],
    );
}

#[test]
fn depends_on_item_that_is_not_a_block() {
    let e = single_web1(
        "variable \"v\" { default = \"x\" }\npackage \"nginx\" {\n  host       = host.web1\n  depends_on = [var.v]\n}\n",
        ErrorKind::WrongType,
    );
    assert_report(
        &e,
        &[
            "main.hcl:5:17]",
            "depends_on[0] is not a reference to a block",
            "`var` is not a block with resources",
            "help: depends_on lists blocks whose resources are created first",
        ],
    );
}

#[test]
fn unknown_host_key_check_suggests() {
    let e = single(
        &[(
            "main.hcl",
            "host \"web1\" {\n  address        = \"10.0.0.10\"\n  host_key_check = \"accept_new\"\n}\n",
        )],
        ErrorKind::InvalidValue,
    );
    assert_report(
        &e,
        &[
            "main.hcl:3:20]",
            "unknown host_key_check \"accept_new\"",
            "not a host key policy",
            "did you mean \"accept-new\"?",
        ],
    );
}

#[test]
fn duplicate_file_path_on_one_host() {
    let e = single_web1(
        "file \"a\" {\n  host    = host.web1\n  path    = \"/etc/app.conf\"\n  content = \"a\"\n}\nfile \"b\" {\n  host    = host.web1\n  path    = \"/etc/app.conf\"\n  content = \"b\"\n}\n",
        ErrorKind::Duplicate,
    );
    assert_report(
        &e,
        &[
            "main.hcl:9:13]",
            "file path \"/etc/app.conf\" is managed twice on host \"web1\"",
            "file.b has file path \"/etc/app.conf\" here",
            "first used here",
            "help: two blocks would manage the same object on one host",
        ],
    );
}

#[test]
fn same_path_on_two_hosts_is_fine_but_same_package_twice_is_not() {
    let e = load_err(&[(
        "main.hcl",
        "host \"a\" { address = \"10.0.0.1\" }\nhost \"b\" { address = \"10.0.0.2\" }\nfile \"x\" {\n  host    = host.a\n  path    = \"/etc/x\"\n  content = \"x\"\n}\nfile \"y\" {\n  host    = host.b\n  path    = \"/etc/x\"\n  content = \"y\"\n}\npackage \"redis\" {\n  host = host.a\n  name = \"redis-server\"\n}\npackage \"redis_again\" {\n  host = host.a\n  name = \"redis-server\"\n}\n",
    )]);
    assert_eq!(e.len(), 1, "{}", render(&e));
    assert_report(
        &e,
        &[
            "main.hcl:19:10]",
            "package \"redis-server\" is managed twice on host \"a\"",
        ],
    );
}

#[test]
fn duplicate_firewall_port_counts_the_default_proto() {
    let e = single_web1(
        "firewall_rule \"a\" {\n  host       = host.web1\n  port       = 22\n  allow_from = []\n}\nfirewall_rule \"b\" {\n  host       = host.web1\n  port       = 22\n  proto      = \"tcp\"\n  allow_from = []\n}\n",
        ErrorKind::Duplicate,
    );
    assert_report(
        &e,
        &[
            "main.hcl:9:16]",
            "firewall rule for port 22/tcp is managed twice on host \"web1\"",
        ],
    );
}

#[test]
fn unknown_attribute_suggests() {
    let e = single_web1(
        "file \"f\" {\n  host    = host.web1\n  path    = \"/etc/f\"\n  contnet = \"x\"\n  content = \"x\"\n}\n",
        ErrorKind::UnknownAttribute,
    );
    assert_report(
        &e,
        &[
            "main.hcl:5:3]",
            "unknown attribute \"contnet\" in a file block",
            "did you mean \"content\"?",
        ],
    );
}

#[test]
fn invalid_defaulted_package_name() {
    let e = single_web1(
        "package \"Redis_Server\" { host = host.web1 }\n",
        ErrorKind::InvalidIdentifier,
    );
    assert_report(
        &e,
        &[
            "main.hcl:2:9]",
            "invalid package name \"Redis_Server\"",
            "the defaulted name is not a valid package name",
            "defaults to \"Redis_Server\" here",
        ],
    );
}
