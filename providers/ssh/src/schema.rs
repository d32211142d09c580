//! Schemas of the host resource types.
//!
//! The attribute names here are the contract with the config crate, which lowers HCL
//! into exactly these names.

use terrace_provider::{AttrSchema, ResourceSchema};

/// Type name of a file on a host.
pub const FILE: &str = "host_file";
/// Type name of an apt package.
pub const PACKAGE: &str = "host_package";
/// Type name of a service (systemd unit or init script).
pub const SERVICE: &str = "host_service";
/// Type name of an nftables rule in terrace's own table.
pub const FIREWALL_RULE: &str = "host_firewall_rule";
/// Type name of a guarded command.
pub const COMMAND: &str = "host_command";

const FILE_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("path").force_new(),
    // Kept in state so that plans can show a line diff. Changes on the host are
    // detected through `content_sha256`; observe reads the content back only when the
    // hash differs (world-readable text files under a size cap), so that drift shows
    // as a line diff; otherwise the recorded value stands.
    AttrSchema::plain("content"),
    // Filled in by `normalize` from `content`; observe reports the live file's hash.
    AttrSchema::plain("content_sha256").computed(),
    AttrSchema::plain("mode"),
    AttrSchema::plain("owner"),
    AttrSchema::plain("group"),
];

const PACKAGE_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("name").force_new(),
    AttrSchema::plain("state"),
    AttrSchema::plain("version"),
];

const SERVICE_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("name").force_new(),
    AttrSchema::plain("running"),
    AttrSchema::plain("enabled"),
    // An opaque token (a hash of the files the service reads): when it changes, the
    // update restarts the service. Nothing on the host records it.
    AttrSchema::plain("restart_on").unobservable(),
];

const FIREWALL_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("port"),
    AttrSchema::plain("proto"),
    AttrSchema::plain("allow_from"),
    AttrSchema::plain("comment"),
    // Rules in terrace's chain that terrace did not write and that can match this
    // rule's traffic, as nft prints them. Always `[]` in the configuration: anything
    // else is drift, and apply removes them.
    AttrSchema::plain("foreign_rules"),
];

const COMMAND_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("command").unobservable(),
    AttrSchema::plain("creates").unobservable(),
    AttrSchema::plain("unless").unobservable(),
];

/// The resource types this provider implements.
pub static SCHEMAS: &[ResourceSchema] = &[
    ResourceSchema {
        type_name: FILE,
        description: "host file",
        import_id: &["path"],
        adopt_existing: false,
        attrs: FILE_ATTRS,
    },
    ResourceSchema {
        type_name: PACKAGE,
        description: "package",
        import_id: &["name"],
        adopt_existing: true,
        attrs: PACKAGE_ATTRS,
    },
    ResourceSchema {
        type_name: SERVICE,
        description: "service",
        import_id: &["name"],
        adopt_existing: true,
        attrs: SERVICE_ATTRS,
    },
    ResourceSchema {
        type_name: FIREWALL_RULE,
        description: "firewall rule",
        import_id: &["port", "proto"],
        adopt_existing: false,
        attrs: FIREWALL_ATTRS,
    },
    ResourceSchema {
        type_name: COMMAND,
        description: "command",
        import_id: &["command"],
        adopt_existing: true,
        attrs: COMMAND_ATTRS,
    },
];
