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
    AttrSchema::plain("path")
        .force_new()
        .string("\"/etc/nginx/nginx.conf\"")
        .required()
        .doc("Absolute path of the file on the host."),
    // Kept in state so that plans can show a line diff, but never read back: changes
    // on the host are detected through `content_sha256`.
    AttrSchema::plain("content")
        .unobservable()
        .string("\"bind 0.0.0.0\\n\"")
        .doc("The file's content (a block sets it inline, or renders it from `source`)."),
    // Filled in by `normalize` from `content`; observe reports the live file's hash.
    AttrSchema::plain("content_sha256")
        .computed()
        .output()
        .doc("SHA-256 of the content, as lower-case hex."),
    // A string or a number: `"0644"`, `644`.
    AttrSchema::plain("mode").doc("Octal file mode, e.g. \"0644\"."),
    AttrSchema::plain("owner")
        .string("\"root\"")
        .doc("Owning user."),
    AttrSchema::plain("group")
        .string("\"root\"")
        .doc("Owning group."),
];

const PACKAGE_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("name")
        .force_new()
        .string("\"nginx\"")
        .required()
        .doc("Debian package name, optionally with `:arch`."),
    AttrSchema::plain("state")
        .string("\"present\"")
        .one_of(&["present", "absent"], "a package state")
        .doc("Whether the package is installed (default \"present\")."),
    AttrSchema::plain("version")
        .string("\"5:7.0.15-1~deb12u1\"")
        .doc("Exact Debian version to install."),
];

const SERVICE_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("name")
        .force_new()
        .string("\"nginx\"")
        .required()
        .doc("systemd unit or init script name."),
    AttrSchema::plain("running")
        .bool()
        .doc("Whether the service runs (default true)."),
    AttrSchema::plain("enabled")
        .bool()
        .doc("Whether the service starts at boot."),
    // An opaque token (a hash of the files the service reads): when it changes, the
    // update restarts the service. Nothing on the host records it.
    AttrSchema::plain("restart_on")
        .unobservable()
        .doc("Restart token (a block lists the files whose content it hashes)."),
];

const FIREWALL_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("port")
        .int(1, 65535, "6379")
        .required()
        .doc("The port reachable only from `allow_from`."),
    AttrSchema::plain("proto")
        .string("\"tcp\"")
        .one_of(&["tcp", "udp"], "a protocol")
        .doc("Protocol (default \"tcp\")."),
    AttrSchema::plain("allow_from")
        .string_list("[\"10.0.0.0/24\", host.web1.address]")
        .required()
        .doc("IP addresses and CIDR networks allowed to connect."),
    AttrSchema::plain("comment")
        .string("\"app servers only\"")
        .doc("A note kept in the rule's nftables comment."),
];

const COMMAND_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("command")
        .unobservable()
        .string("\"mkswap /swapfile\"")
        .required()
        .doc("Shell command to run."),
    AttrSchema::plain("creates")
        .unobservable()
        .string("\"/swapfile\"")
        .doc("A file the command makes: the command is skipped while it exists."),
    AttrSchema::plain("unless")
        .unobservable()
        .string("\"swapon --show | grep -q swapfile\"")
        .doc("A shell test: the command is skipped while it exits 0."),
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
