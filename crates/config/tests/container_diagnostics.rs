//! Located diagnostics for images, networks, volumes and containers.
mod common;

use common::{assert_report, load_err, render, single};
use terrace_config::ErrorKind;

#[test]
fn unknown_attribute_in_container_block_suggests() {
    let e = single(
        &[(
            "main.hcl",
            "service \"web\" {\n  engine = \"container\"\n  container {\n    image  = \"nginx:1\"\n    memroy = \"64m\"\n  }\n}\n",
        )],
        ErrorKind::UnknownAttribute,
    );
    assert_report(
        &e,
        &[
            "main.hcl:5:5]",
            "unknown attribute \"memroy\" in a container block",
            "did you mean \"memory\"?",
        ],
    );
}

#[test]
fn container_block_without_image() {
    let e = single(
        &[(
            "main.hcl",
            "service \"web\" {\n  engine = \"container\"\n  container {\n    ports = [\"80:80\"]\n  }\n}\n",
        )],
        ErrorKind::MissingAttribute,
    );
    assert_report(
        &e,
        &[
            "main.hcl:3:3]",
            "missing required attribute \"image\"",
            "this container block has no \"image\"",
            "help: add `image = ...`",
        ],
    );
}

#[test]
fn endpoint_on_a_container_service_is_unsupported() {
    let e = single(
        &[(
            "main.hcl",
            "service \"web\" {\n  engine   = \"container\"\n  endpoint = { address = \"127.0.0.1\" }\n  container {\n    image = \"nginx:1\"\n  }\n}\n",
        )],
        ErrorKind::Unsupported,
    );
    assert_report(
        &e,
        &[
            "main.hcl:3:3]",
            "\"endpoint\" is not used by a container service",
            "not for engine \"container\"",
            "help: remove \"endpoint\"",
        ],
    );
}

#[test]
fn container_engine_needs_a_container_block_and_sql_engine_an_endpoint() {
    let e = load_err(&[(
        "main.hcl",
        "service \"cache\" {\n  engine = \"redis\"\n}\nservice \"db\" {\n  engine = \"mariadb\"\n  admin  = { user = \"a\", password = \"b\" }\n}\n",
    )]);
    assert_eq!(e.len(), 2, "{}", render(&e));
    assert!(e.iter().all(|x| x.kind() == ErrorKind::MissingAttribute));
    assert_report(
        &e,
        &[
            "main.hcl:1:1]",
            "missing required block \"container\"",
            "a redis service is run as a container",
            "main.hcl:4:1]",
            "missing required attribute \"endpoint\"",
            "this service block has no \"endpoint\"",
        ],
    );
}

#[test]
fn database_on_a_container_service_is_rejected() {
    let e = single(
        &[(
            "main.hcl",
            "service \"web\" {\n  engine = \"container\"\n  container {\n    image = \"nginx:1\"\n  }\n}\ndatabase \"d\" {\n  service = service.web\n  name    = \"d\"\n}\n",
        )],
        ErrorKind::InvalidValue,
    );
    assert_report(
        &e,
        &[
            "main.hcl:8:13]",
            "service \"web\" has engine \"container\", which has no databases",
            "help: a database block needs a service with engine",
        ],
    );
}

#[test]
fn invalid_container_names_explicit_and_defaulted() {
    let e = single(
        &[(
            "main.hcl",
            "service \"web\" {\n  engine = \"container\"\n  container {\n    image = \"nginx:1\"\n    name  = \"web server\"\n  }\n}\n",
        )],
        ErrorKind::InvalidIdentifier,
    );
    assert_report(
        &e,
        &[
            "main.hcl:5:13]",
            "invalid container name \"web server\": the name contains a space",
            "not a valid Docker name",
            "help: Docker names start with an ASCII letter or digit",
        ],
    );
    // A for_each key that makes the defaulted name invalid points at the app block.
    let e = single(
        &[(
            "main.hcl",
            "tenant \"t\" {\n  for_each = toset([\"ok\", \"not ok\"])\n  app {\n    image = \"app:1\"\n  }\n}\n",
        )],
        ErrorKind::InvalidIdentifier,
    );
    assert_report(
        &e,
        &[
            "main.hcl:3:3]",
            "invalid app container name \"t-not ok\"",
            "the defaulted name is not a valid Docker name",
            "the name defaults to \"t-not ok\" here",
        ],
    );
}

#[test]
fn self_outside_a_tenant_app() {
    let e = single(
        &[(
            "main.hcl",
            "service \"web\" {\n  engine = \"container\"\n  container {\n    image = \"nginx:1\"\n    env   = { DB = self.database.name }\n  }\n}\n",
        )],
        ErrorKind::UnknownReference,
    );
    assert_report(
        &e,
        &[
            "main.hcl:5:20]",
            "`self` is only available inside a tenant's blocks",
            "not available here",
            "help: inside `tenant",
        ],
    );
}

#[test]
fn unknown_attribute_of_self_suggests() {
    let e = single(
        &[(
            "main.hcl",
            "tenant \"t\" {\n  app {\n    image = \"app:1\"\n    env   = { V = self.volumes.data.name }\n  }\n}\n",
        )],
        ErrorKind::UnknownReference,
    );
    assert_report(
        &e,
        &[
            "main.hcl:4:19]",
            "`self` has no attribute \"volumes\"",
            "did you mean \"volume\"?",
        ],
    );
}

#[test]
fn network_item_of_the_wrong_type() {
    let e = single(
        &[(
            "main.hcl",
            "network \"farm\" {}\nservice \"web\" {\n  engine = \"container\"\n  container {\n    image    = \"nginx:1\"\n    networks = [network.farm, 42]\n  }\n}\n",
        )],
        ErrorKind::WrongType,
    );
    assert_report(
        &e,
        &[
            "main.hcl:6:31]",
            "wrong type for \"networks[1]\": expected a network reference, a network name or { name = ..., aliases = [...] }, found a number",
            "this is a number",
            "networks = [network.farm]",
        ],
    );
}

#[test]
fn unknown_key_in_network_object_suggests() {
    let e = single(
        &[(
            "main.hcl",
            "service \"web\" {\n  engine = \"container\"\n  container {\n    image    = \"nginx:1\"\n    networks = [{ name = \"farm\", alias = [\"w\"] }]\n  }\n}\n",
        )],
        ErrorKind::UnknownAttribute,
    );
    assert_report(
        &e,
        &[
            "main.hcl:5:34]",
            "unknown attribute \"alias\" in \"networks[0]\"",
            "did you mean \"aliases\"?",
        ],
    );
}

#[test]
fn two_containers_with_the_same_name() {
    let e = single(
        &[(
            "main.hcl",
            "service \"web\" {\n  engine = \"container\"\n  container {\n    image = \"nginx:1\"\n  }\n}\ntenant \"t\" {\n  app {\n    image = \"app:1\"\n    name  = \"web\"\n  }\n}\n",
        )],
        ErrorKind::Duplicate,
    );
    assert_report(
        &e,
        &[
            "main.hcl:10:13]",
            "container name \"web\" is used twice on docker.local",
            "tenant.t.app is named \"web\" here",
            "the first is at",
            "first used here",
            "Docker container names are unique per engine",
        ],
    );
}

#[test]
fn unknown_pull_policy() {
    let e = single(
        &[(
            "main.hcl",
            "image \"web\" {\n  name = \"nginx:1\"\n  pull = \"sometimes\"\n}\n",
        )],
        ErrorKind::InvalidValue,
    );
    assert_report(
        &e,
        &[
            "main.hcl:3:10]",
            "invalid value for \"pull\": \"sometimes\"",
            "not a pull policy",
            "pull must be \"never\", \"if_missing\" or \"always\"",
        ],
    );
}

#[test]
fn restart_policy_and_mount_target_are_checked() {
    let e = load_err(&[(
        "main.hcl",
        "service \"web\" {\n  engine = \"container\"\n  container {\n    image   = \"nginx:1\"\n    restart = \"unless-stoped\"\n    mounts  = [{ source = \"data\", target = \"data\" }]\n  }\n}\n",
    )]);
    assert_eq!(e.len(), 2, "{}", render(&e));
    assert_report(
        &e,
        &[
            "main.hcl:5:15]",
            "invalid restart policy \"unless-stoped\"",
            "did you mean \"unless-stopped\"?",
            "main.hcl:6:44]",
            "invalid mount target \"data\": not an absolute path",
        ],
    );
}

#[test]
fn two_app_blocks_in_a_tenant() {
    let e = single(
        &[(
            "main.hcl",
            "tenant \"shop\" {\n  app {\n    image = \"a:1\"\n  }\n  app {\n    image = \"b:1\"\n  }\n}\n",
        )],
        ErrorKind::Duplicate,
    );
    assert_report(
        &e,
        &[
            "main.hcl:5:3]",
            "tenant \"shop\" has more than one app block",
            "first app block",
        ],
    );
}

#[test]
fn unknown_image_reference_suggests() {
    let e = single(
        &[(
            "main.hcl",
            "image \"busybox\" { name = \"busybox:1\" }\nservice \"web\" {\n  engine = \"container\"\n  container {\n    image = image.busybx\n  }\n}\n",
        )],
        ErrorKind::UnknownReference,
    );
    assert_report(
        &e,
        &[
            "main.hcl:5:13]",
            "no image named \"busybx\"",
            "did you mean \"busybox\"?",
        ],
    );
}
