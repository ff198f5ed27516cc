//! Every key the manifest accepts, per level. The reader and the JSON Schema
//! are both built from these lists, so they cannot disagree.

/// Keys of a group (and of a type section in the short form).
pub const GROUP_KEYS: &[&str] = &[
    "configuration",
    "servers",
    "primary",
    "backups",
    "replicate_from",
    "import_from",
    "add_odd_member",
    "allow_from",
];

pub const CONFIGURATION_KEYS: &[&str] = &[
    "engine",
    "version",
    "operating_system",
    "root_disk_size",
    "root_disk_type",
    "encoding",
    "tags",
];

pub const SERVER_KEYS: &[&str] = &[
    "unique_name",
    "address",
    "public_address",
    "ssh",
    "vendor",
    "size",
    "region",
    "key_name",
    "root_disk_size",
    "root_disk_type",
    "subnet_id",
    "availability_zone",
];

/// Keys of `ssh:`, at the top level, in an environment, or on a server.
pub const SSH_KEYS: &[&str] = &["user", "port", "identity_file", "known_hosts_file", "jump"];

pub const BACKUPS_KEYS: &[&str] = &["managed", "keep", "store"];

/// Keys of the mapping form of `backups.store` (a directory on an ssh host).
pub const BACKUP_STORE_KEYS: &[&str] = &["address", "path"];

/// Keys of the mapping form of `replicate_from` / `import_from`.
pub const GROUP_REF_KEYS: &[&str] = &["application", "group"];

/// `import_from` also takes the managed backup to restore.
pub const IMPORT_REF_KEYS: &[&str] = &["application", "group", "backup"];

/// Vendors with a provider in dbgroups.
pub const SUPPORTED_VENDORS: &[&str] = &["local", "ssh"];

/// Cloud vendors the platform's manifests name, which dbgroups has no
/// provider for; they get a specific error rather than "unknown vendor".
pub const CLOUD_VENDORS: &[&str] = &[
    "aws",
    "azure",
    "digitalocean",
    "gcp",
    "google",
    "hetzner",
    "linode",
    "maas",
    "oracle",
    "ovh",
    "packet",
    "rackspace",
    "upcloud",
    "vultr",
];
