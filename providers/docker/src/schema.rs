//! Schemas of the four Docker resource types.
//!
//! The attribute names here are the contract with the config crate, which lowers HCL
//! into exactly these names.

use terrace_provider::{AttrSchema, ResourceSchema};

/// Type name of an image (a local tag, adopted, imported from a tarball or pulled).
pub const IMAGE: &str = "docker_image";
/// Type name of a user-defined network.
pub const NETWORK: &str = "docker_network";
/// Type name of a named volume.
pub const VOLUME: &str = "docker_volume";
/// Type name of a container.
pub const CONTAINER: &str = "docker_container";
/// The container attribute listing resource limits set outside terrace.
pub const EXTRA_LIMITS: &str = "extra_limits";

const IMAGE_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("name")
        .force_new()
        .string("\"nginx:1.27\"")
        .required()
        .doc("Image reference, e.g. \"nginx:1.27\"."),
    // How to get the image, not a property of it: nothing to read back.
    AttrSchema::plain("pull")
        .unobservable()
        .string("\"if_missing\"")
        .one_of(&["never", "if_missing", "always"], "a pull policy")
        .doc("When to pull the image (default \"if_missing\")."),
    AttrSchema::plain("source")
        .unobservable()
        .string("\"images/rootfs.tar\"")
        .doc("A root filesystem tarball to import the image from."),
    AttrSchema::plain("cmd")
        .unobservable()
        .string_list("[\"httpd\", \"-f\"]")
        .doc("The default command of an image imported from `source`."),
    AttrSchema::plain("id")
        .computed()
        .output()
        .doc("The image id."),
];

const NETWORK_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("name")
        .force_new()
        .string("\"farm\"")
        .required()
        .doc("Docker network name."),
    AttrSchema::plain("driver")
        .force_new()
        .string("\"bridge\"")
        .doc("Network driver."),
    AttrSchema::plain("internal")
        .force_new()
        .bool()
        .doc("No route to the outside."),
];

const VOLUME_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("name")
        .force_new()
        .string("\"db_data\"")
        .required()
        .doc("Docker volume name."),
    AttrSchema::plain("driver")
        .force_new()
        .string("\"local\"")
        .doc("Volume driver."),
];

const CONTAINER_ATTRS: &[AttrSchema] = &[
    // Docker renames in place; observe finds a container by its address label, so a
    // rename by hand is drift that apply renames back.
    AttrSchema::plain("name"),
    AttrSchema::plain("image").force_new(),
    // Normalised to "(id of IMAGE)"; observe reports that while the container still runs
    // the image the name points to, and the old id once the tag has moved: a replace.
    AttrSchema::plain("image_id").force_new().computed(),
    AttrSchema::plain("command").force_new(),
    AttrSchema::plain("env").force_new(),
    AttrSchema::plain("labels").force_new(),
    AttrSchema::plain("ports").force_new(),
    AttrSchema::plain("mounts").force_new(),
    AttrSchema::plain("networks").force_new(),
    AttrSchema::plain("memory").byte_size(),
    AttrSchema::plain("restart"),
    AttrSchema::plain("healthcheck").force_new(),
    // Audit: CPU, process, swap and I/O limits set with `docker update`, which terrace
    // never sets. Desired empty; observe lists what it finds. Docker cannot lift most of
    // them in place (an update of 0 means "unchanged"), so the repair is a new container.
    AttrSchema::plain(EXTRA_LIMITS)
        .force_new()
        .output()
        .doc("Resource limits set outside terrace (`docker update --cpus`, `--pids-limit`, …), as the flags that set them; always empty in the configuration."),
    AttrSchema::plain("running"),
    AttrSchema::plain("paused"),
    // Set at creation only (`docker update` cannot change them). Observe reports the
    // engine's effective values (SIGTERM and 10 s when unset, or what the image says),
    // so writing a default out is no change.
    AttrSchema::plain("init")
        .force_new()
        .doc("Run an init process as PID 1 that forwards signals and reaps zombies (Docker's --init)."),
    AttrSchema::plain("stop_signal")
        .force_new()
        .doc("The signal that stops the container, e.g. \"SIGINT\" (default: the image's, else SIGTERM)."),
    AttrSchema::plain("stop_timeout")
        .force_new()
        .doc("How long a stop or destroy waits after the stop signal before killing, in whole seconds, e.g. \"5s\" (default 10s; 3s on destroy)."),
    // The engine's id, recorded at creation (and kept by updates): how observe finds
    // the container whatever its name, even when another project on the engine uses the
    // same address. Not `computed`: a re-created container must not carry the old one.
    AttrSchema::plain("id").unobservable(),
];

/// The resource types this provider implements: `docker_image`, `docker_network`,
/// `docker_volume` and `docker_container`.
pub static SCHEMAS: &[ResourceSchema] = &[
    ResourceSchema {
        type_name: IMAGE,
        description: "Docker image",
        import_id: &["name"],
        adopt_existing: true,
        carries_data: false,
        lives_in: &[],
        drops_data_if: None,
        delete_keeps_object: false,
        attrs: IMAGE_ATTRS,
    },
    ResourceSchema {
        type_name: NETWORK,
        description: "Docker network",
        import_id: &["name"],
        adopt_existing: false,
        carries_data: false,
        lives_in: &[],
        drops_data_if: None,
        delete_keeps_object: false,
        attrs: NETWORK_ATTRS,
    },
    ResourceSchema {
        type_name: VOLUME,
        description: "Docker volume",
        import_id: &["name"],
        adopt_existing: false,
        carries_data: true,
        lives_in: &[],
        drops_data_if: None,
        delete_keeps_object: false,
        attrs: VOLUME_ATTRS,
    },
    ResourceSchema {
        type_name: CONTAINER,
        description: "Docker container",
        import_id: &["name"],
        adopt_existing: false,
        carries_data: false,
        lives_in: &[],
        drops_data_if: None,
        delete_keeps_object: false,
        attrs: CONTAINER_ATTRS,
    },
];
