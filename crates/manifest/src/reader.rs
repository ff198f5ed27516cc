//! Walks the YAML node tree into the typed [`Manifest`], reporting every
//! shape problem (unknown keys, wrong types, bad values) as it goes instead
//! of stopping at the first, as serde would.

use marked_yaml::Node;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};

use crate::ParseOptions;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::hosts;
use crate::keys::{
    BACKUP_STORE_KEYS, BACKUPS_KEYS, CONFIGURATION_KEYS, GROUP_KEYS, GROUP_REF_KEYS,
    IMPORT_REF_KEYS, SERVER_KEYS, SSH_KEYS,
};
use crate::model::{
    BackupChoice, BackupStore, Backups, Configuration, DbType, Engine, Group, GroupRef, Manifest,
    Server, SshSettings, Tag,
};
use crate::source::{SourceFile, Span, Spanned};
use crate::suggest;
use crate::yaml::{self, is_null, kind};

const APPLICATION_KEY: &str = "application";
const SSH_KEY: &str = "ssh";

pub(crate) struct Reader<'a> {
    source: &'a SourceFile,
    diagnostics: &'a mut Diagnostics,
}

type Entry<'n> = (&'n MarkedScalarNode, &'n Node);

impl<'a> Reader<'a> {
    pub(crate) fn new(source: &'a SourceFile, diagnostics: &'a mut Diagnostics) -> Self {
        Self {
            source,
            diagnostics,
        }
    }

    fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn key_span(&self, key: &MarkedScalarNode) -> Span {
        yaml::scalar_span(self.source, key)
    }

    fn span(&self, node: &Node) -> Span {
        yaml::node_span(self.source, node)
    }

    // ----- The document: application, environments, type sections -----

    pub(crate) fn read_document(&mut self, root: &Node, options: &ParseOptions) -> Manifest {
        let Some(top) = root.as_mapping() else {
            // load() insists on a top-level mapping; nothing more to read.
            return Manifest {
                application: None,
                environment: None,
                groups: Vec::new(),
            };
        };
        let environments: Vec<Entry<'_>> = top
            .iter()
            .filter(|(key, value)| {
                key.as_str() != APPLICATION_KEY
                    && key.as_str() != SSH_KEY
                    && DbType::from_key(key.as_str()).is_none()
                    && looks_like_environment(value)
            })
            .collect();
        let top_has_types = top.keys().any(|k| DbType::from_key(k.as_str()).is_some());

        let mut application = top
            .get_node(APPLICATION_KEY)
            .and_then(|node| self.string(node, "application name"));
        let mut ssh = self.read_ssh_at(top);
        let mut groups = Vec::new();
        let mut environment = None;

        match &options.environment {
            Some(chosen) => match environments.iter().find(|(key, _)| key.as_str() == chosen) {
                Some((key, section)) => {
                    environment = Some(chosen.clone());
                    let section = section.as_mapping().expect("environments are mappings");
                    if let Some(app) = section.get_node(APPLICATION_KEY) {
                        application = self.string(app, "application name");
                    }
                    // The environment's keys over the top level's, one by one.
                    let own = self.read_ssh_at(section);
                    ssh = match (own, ssh) {
                        (Some(own), Some(top)) => Some(own.over(&top)),
                        (own, top) => own.or(top),
                    };
                    self.read_section(
                        section,
                        &mut groups,
                        &format!("environment `{}`", key.as_str()),
                    );
                    for (top_key, _) in top.iter() {
                        if DbType::from_key(top_key.as_str()).is_some() {
                            self.report(
                                    Diagnostic::error(
                                        Code::MixedGroupForms,
                                        format!(
                                            "`{}` is declared at the top level while environment `{chosen}` is chosen",
                                            top_key.as_str()
                                        ),
                                        self.key_span(top_key),
                                    )
                                    .with_help(format!(
                                        "move it into `{chosen}:` so that each environment declares its own groups"
                                    )),
                                );
                        }
                    }
                }
                None => {
                    let names: Vec<&str> = environments.iter().map(|(k, _)| k.as_str()).collect();
                    let help = if names.is_empty() {
                        "this manifest has no environment sections; drop --environment".to_string()
                    } else {
                        let mut help =
                            format!("environments in this manifest: {}", names.join(", "));
                        if let Some(hint) = suggest::hint(chosen, names.iter().copied()) {
                            help = format!("{hint} {help}");
                        }
                        help
                    };
                    self.report(
                        Diagnostic::error(
                            Code::UnknownEnvironment,
                            format!("the manifest has no environment `{chosen}`"),
                            Span::new(0, 0),
                        )
                        .with_help(help),
                    );
                }
            },
            None => {
                if !top_has_types && !environments.is_empty() {
                    let (first, _) = environments[0];
                    let names: Vec<&str> = environments.iter().map(|(k, _)| k.as_str()).collect();
                    self.report(
                        Diagnostic::error(
                            Code::EnvironmentRequired,
                            format!(
                                "the manifest declares its groups per environment ({}); choose one",
                                names.join(", ")
                            ),
                            self.key_span(first),
                        )
                        .with_help(format!("pass --environment {}", names[0])),
                    );
                } else {
                    for (key, _) in &environments {
                        self.report(
                            Diagnostic::advice(
                                Code::IgnoredSection,
                                format!("environment section `{}` is not read", key.as_str()),
                                self.key_span(key),
                            )
                            .with_help(format!("pass --environment {} to use it", key.as_str())),
                        );
                    }
                }
            }
        }

        // Everything at the top level that is not an environment: a section
        // of the platform (rails, docker…) unless it is a misspelt key of ours.
        for (key, value) in top.iter() {
            let name = key.as_str();
            let is_environment = environments.iter().any(|(k, _)| k.as_str() == name);
            if name == APPLICATION_KEY || name == SSH_KEY || is_environment {
                continue;
            }
            if let Some(db_type) = DbType::from_key(name) {
                if options.environment.is_none() {
                    self.read_type_section(db_type, key, value, &mut groups);
                }
                continue;
            }
            self.unknown_or_ignored(key, "the manifest");
        }

        if let Some(app) = &options.application {
            // The name came from --app: it has no place in the file.
            if let Some(reason) = name_problem(app, false) {
                self.report(
                    Diagnostic::command_line_error(
                        Code::InvalidName,
                        format!("invalid --app value \"{app}\": {reason}",),
                    )
                    .with_help(name_rule(false)),
                );
            }
            application = Some(Spanned::new(app.clone(), Span::new(0, 0)));
        } else if let Some(app) = &application {
            self.check_name("application name", app, false);
        }
        for server in groups.iter_mut().flat_map(|g| g.servers.iter_mut()) {
            server.application_ssh = ssh.clone();
        }
        Manifest {
            application,
            environment,
            groups,
        }
    }

    /// The database sections inside an environment.
    fn read_section(
        &mut self,
        section: &MarkedMappingNode,
        groups: &mut Vec<Group>,
        context: &str,
    ) {
        for (key, value) in section.iter() {
            match DbType::from_key(key.as_str()) {
                Some(db_type) => self.read_type_section(db_type, key, value, groups),
                None if key.as_str() == APPLICATION_KEY || key.as_str() == SSH_KEY => {}
                None => self.unknown_or_ignored(key, context),
            }
        }
    }

    /// A key we don't read: an error if it looks like a typo of one we do,
    /// else an advice that the platform section is ignored.
    fn unknown_or_ignored(&mut self, key: &MarkedScalarNode, context: &str) {
        let ours = DbType::ALL.map(DbType::key);
        // `ssh` is left out: three letters are one edit from platform
        // sections such as `ssl`, which must stay ignorable.
        let candidates = ours.iter().copied().chain([APPLICATION_KEY]);
        match suggest::did_you_mean(key.as_str(), candidates) {
            Some(best) => self.report(Diagnostic::error(
                Code::UnknownKey,
                format!("unknown key \"{}\", did you mean \"{best}\"?", key.as_str()),
                self.key_span(key),
            )),
            None => self.report(
                Diagnostic::advice(
                    Code::IgnoredSection,
                    format!(
                        "`{}` in {context} is not a database section and is ignored",
                        key.as_str()
                    ),
                    self.key_span(key),
                )
                .with_help(
                    "dbgroups reads only application, ssh, mysql, postgresql, redis and mongodb",
                ),
            ),
        }
    }

    fn read_type_section(
        &mut self,
        db_type: DbType,
        type_key: &MarkedScalarNode,
        node: &Node,
        groups: &mut Vec<Group>,
    ) {
        let Some(section) = self.mapping(node, &format!("the {db_type} section")) else {
            return;
        };
        let Some(groups_node) = section.get_node("groups") else {
            // Short form: the section itself is the group named `default`.
            let name = Spanned::new(Group::SHORT_FORM_NAME.to_string(), self.key_span(type_key));
            let allowed: Vec<&str> = GROUP_KEYS.iter().copied().chain(["groups"]).collect();
            if let Some(group) = self.read_group(db_type, name, section, true, &allowed) {
                groups.push(group);
            }
            return;
        };
        for (key, _) in section.iter().filter(|(k, _)| k.as_str() != "groups") {
            let diagnostic = if GROUP_KEYS.contains(&key.as_str()) {
                Diagnostic::error(
                    Code::MixedGroupForms,
                    format!(
                        "`{}` sits beside `groups:` in the {db_type} section",
                        key.as_str()
                    ),
                    self.key_span(key),
                )
                .with_help(
                    "the short form applies only to the group named `default`: with `groups:`, \
                     move it under the group it belongs to",
                )
            } else {
                self.unknown_key(key, &["groups"], &format!("the {db_type} section"))
            };
            self.report(diagnostic);
        }
        let Some(group_map) = self.mapping(groups_node, "groups (group name: settings)") else {
            return;
        };
        for (name_key, group_node) in group_map.iter() {
            let name = Spanned::new(name_key.as_str().to_string(), self.key_span(name_key));
            self.check_name("group name", &name, false);
            let Some(body) = self.mapping_or_empty(group_node, "group") else {
                continue;
            };
            if let Some(group) = self.read_group(db_type, name, &body, false, GROUP_KEYS) {
                groups.push(group);
            }
        }
    }

    // ----- A group -----

    fn read_group(
        &mut self,
        db_type: DbType,
        name: Spanned<String>,
        map: &MarkedMappingNode,
        short_form: bool,
        allowed: &[&str],
    ) -> Option<Group> {
        let mut group = Group {
            db_type,
            name,
            short_form,
            configuration: Configuration::default(),
            primary: None,
            backups: Backups::default(),
            replicate_from: None,
            import_from: None,
            add_odd_member: None,
            allow_from: Vec::new(),
            servers: Vec::new(),
            servers_key: None,
        };
        let context = format!("group `{}`", group.address());
        for (key, value) in self.entries(map, allowed, &context, misplaced_in_group) {
            match key.as_str() {
                "configuration" => group.configuration = self.read_configuration(db_type, value),
                "servers" => {
                    group.servers_key = Some(self.key_span(key));
                    group.servers = self.read_servers(value);
                }
                "primary" => group.primary = self.boolean(value),
                "backups" => group.backups = self.read_backups(value),
                "replicate_from" => {
                    group.replicate_from = self.read_group_ref(value, GROUP_REF_KEYS)
                }
                "import_from" => group.import_from = self.read_group_ref(value, IMPORT_REF_KEYS),
                "add_odd_member" => group.add_odd_member = self.boolean(value),
                "allow_from" => group.allow_from = self.read_networks(value),
                // "groups" in the short form's allowed list means the section
                // was not a short form after all; handled by the caller.
                _ => {}
            }
        }
        Some(group)
    }

    fn read_configuration(&mut self, db_type: DbType, node: &Node) -> Configuration {
        let mut config = Configuration::default();
        let Some(map) = self.mapping_or_empty(node, "configuration") else {
            return config;
        };
        for (key, value) in self.entries(&map, CONFIGURATION_KEYS, "configuration", |_| None) {
            match key.as_str() {
                "engine" => {
                    config.engine = self.read_engine(db_type, key, value);
                    config.engine_unrecognised = config.engine.is_none();
                }
                "version" => config.version = self.string(value, "version"),
                "operating_system" => {
                    config.operating_system = self.string(value, "operating system")
                }
                "root_disk_size" => config.root_disk_size = self.size_in_gb(value),
                "root_disk_type" => config.root_disk_type = self.string(value, "disk type"),
                "encoding" => config.encoding = self.string(value, "encoding"),
                "tags" => config.tags = self.read_tags(value),
                _ => {}
            }
        }
        config
    }

    fn read_engine(
        &mut self,
        db_type: DbType,
        key: &MarkedScalarNode,
        node: &Node,
    ) -> Option<Spanned<Engine>> {
        let text = self.string(node, "engine")?;
        if db_type != DbType::Mysql {
            self.report(
                Diagnostic::error(
                    Code::EngineMismatch,
                    format!("`engine` applies only to mysql groups, not to {db_type}"),
                    self.key_span(key),
                )
                .with_help(format!(
                    "{db_type} groups always run {db_type}: remove `engine: {}`",
                    text.value
                )),
            );
            return None;
        }
        match Engine::from_mysql_family_key(&text.value) {
            Some(engine) => Some(Spanned::new(engine, text.span)),
            None => {
                let family = Engine::MYSQL_FAMILY.map(Engine::key);
                let mut message = format!("unknown engine \"{}\"", text.value);
                if let Some(best) = suggest::did_you_mean(&text.value, family) {
                    message.push_str(&format!(", did you mean \"{best}\"?"));
                }
                self.report(
                    Diagnostic::error(Code::UnknownEngine, message, text.span)
                        .with_help("the mysql engines are mysql, percona and mariadb"),
                );
                None
            }
        }
    }

    fn read_tags(&mut self, node: &Node) -> Vec<Tag> {
        match node {
            _ if is_null(node) => Vec::new(),
            Node::Sequence(items) => items
                .iter()
                .filter_map(|item| self.string(item, "tag"))
                .map(|key| Tag { key, value: None })
                .collect(),
            Node::Mapping(map) => map
                .iter()
                .filter_map(|(key, value)| {
                    let value = self.string(value, "tag value")?;
                    let key = Spanned::new(key.as_str().to_string(), self.key_span(key));
                    Some(Tag {
                        key,
                        value: Some(value),
                    })
                })
                .collect(),
            Node::Scalar(_) => {
                self.wrong_type(node, "a list of tags or a mapping of tag: value");
                Vec::new()
            }
        }
    }

    /// `allow_from: [10.0.1.0/24, 192.0.2.7]`: each a network in CIDR
    /// form, or one address. A network with host bits set is refused with
    /// the network meant, since it is likely a typo for one of them.
    fn read_networks(&mut self, node: &Node) -> Vec<Spanned<String>> {
        let items = match node {
            _ if is_null(node) => return Vec::new(),
            Node::Sequence(items) => items,
            _ => {
                self.wrong_type(node, "a list of networks (CIDR, such as 10.0.1.0/24)");
                return Vec::new();
            }
        };
        let mut networks: Vec<Spanned<String>> = Vec::new();
        for item in items.iter() {
            let Some(text) = self.string(item, "network") else {
                continue;
            };
            match parse_network(&text.value) {
                Ok(network) => {
                    if !networks.iter().any(|n| n.value == network) {
                        networks.push(Spanned::new(network, text.span));
                    }
                }
                Err((problem, help)) => self.report(
                    Diagnostic::error(
                        Code::InvalidAddress,
                        format!(
                            "invalid network \"{}\" in allow_from: {problem}",
                            text.value
                        ),
                        text.span,
                    )
                    .with_help(help),
                ),
            }
        }
        networks
    }

    fn read_backups(&mut self, node: &Node) -> Backups {
        let mut backups = Backups::default();
        let Some(map) = self.mapping_or_empty(node, "backups") else {
            return backups;
        };
        for (key, value) in self.entries(&map, BACKUPS_KEYS, "backups", |_| None) {
            match key.as_str() {
                "keep" => backups.keep = self.backup_count(value),
                "store" => backups.store = self.read_backup_store(value),
                _ => backups.managed = self.boolean(value),
            }
        }
        backups
    }

    /// `keep: N`, a whole number (0 keeps only the newest verified backup).
    fn backup_count(&mut self, node: &Node) -> Option<Spanned<u32>> {
        let text = self.string(node, "number of backups")?;
        match text.value.parse::<u32>() {
            Ok(count) => Some(Spanned::new(count, text.span)),
            Err(_) => {
                self.report(
                    Diagnostic::error(
                        Code::InvalidValue,
                        format!(
                            "expected a whole number of backups, found \"{}\"",
                            text.value
                        ),
                        text.span,
                    )
                    .with_help("write how many verified backups to keep, such as keep: 7"),
                );
                None
            }
        }
    }

    /// `store: PATH` or `store: { address, path }`.
    fn read_backup_store(&mut self, node: &Node) -> Option<BackupStore> {
        let span = self.span(node);
        let (address, path) = match node {
            Node::Scalar(_) => (None, self.string(node, "directory")),
            Node::Mapping(map) => {
                let (mut address, mut path) = (None, None);
                for (key, value) in self.entries(map, BACKUP_STORE_KEYS, "backups.store", |_| None)
                {
                    match key.as_str() {
                        "address" => {
                            address = self
                                .string(value, "address")
                                .and_then(|text| self.address(text, "address"))
                        }
                        _ => path = self.string(value, "directory"),
                    }
                }
                if path.is_none() {
                    self.report(
                        Diagnostic::error(Code::MissingKey, "the store has no `path`", span)
                            .with_help("add path: /absolute/directory (on that host)"),
                    );
                }
                (address, path)
            }
            Node::Sequence(_) => {
                self.wrong_type(node, "a directory or { address, path }");
                return None;
            }
        };
        let path = path?;
        if !path.value.starts_with('/') || path.value.split('/').any(|part| part == "..") {
            self.report(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!(
                        "the backup store \"{}\" is not an absolute path",
                        path.value
                    ),
                    path.span,
                )
                .with_help(
                    "write an absolute directory without `..`, such as /var/backups/dbgroups",
                ),
            );
            return None;
        }
        Some(BackupStore {
            address,
            path,
            span,
        })
    }

    /// `import_from.backup: latest | ID`.
    fn read_backup_choice(&mut self, node: &Node) -> Option<Spanned<BackupChoice>> {
        let text = self.string(node, "latest or a backup id")?;
        let choice = if text.value == "latest" {
            BackupChoice::Latest
        } else if !text.value.is_empty()
            && text
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            BackupChoice::Id(text.value.clone())
        } else {
            self.report(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!("\"{}\" is not a backup id", text.value),
                    text.span,
                )
                .with_help("write latest, or an id `dbgroups backup list` shows"),
            );
            return None;
        };
        Some(Spanned::new(choice, text.span))
    }

    /// `replicate_from: default` or `replicate_from: { application, group }`.
    fn read_group_ref(&mut self, node: &Node, keys: &[&str]) -> Option<GroupRef> {
        let span = self.span(node);
        match node {
            _ if is_null(node) => {
                self.report(
                    Diagnostic::error(Code::MissingKey, "no group is named here", span)
                        .with_help("write a group name, or { application: NAME, group: NAME }"),
                );
                None
            }
            Node::Scalar(_) => {
                let group = self.string(node, "group name")?;
                Some(GroupRef {
                    application: None,
                    group,
                    span,
                    backup: None,
                })
            }
            Node::Mapping(map) => {
                let mut application = None;
                let mut group = None;
                let mut backup = None;
                for (key, value) in self.entries(map, keys, "a group reference", |_| None) {
                    match key.as_str() {
                        "application" => application = self.string(value, "application name"),
                        "backup" => backup = self.read_backup_choice(value),
                        _ => group = self.string(value, "group name"),
                    }
                }
                if group.is_none() {
                    self.report(
                        Diagnostic::error(Code::MissingKey, "the reference has no `group`", span)
                            .with_help("add group: NAME (the group in that application)"),
                    );
                }
                Some(GroupRef {
                    application,
                    group: group?,
                    span,
                    backup,
                })
            }
            Node::Sequence(_) => {
                self.wrong_type(node, "a group name or { application, group }");
                None
            }
        }
    }

    // ----- Servers -----

    fn read_servers(&mut self, node: &Node) -> Vec<Server> {
        if is_null(node) {
            return Vec::new();
        }
        let Some(items) = node.as_sequence() else {
            self.wrong_type(node, "a list of `- server: {…}` entries");
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| self.read_server_entry(item))
            .collect()
    }

    fn read_server_entry(&mut self, item: &Node) -> Option<Server> {
        let Some(map) = item.as_mapping() else {
            self.wrong_type(item, "a `- server: { unique_name: … }` entry");
            return None;
        };
        let Some((server_key, body)) = map.iter().find(|(k, _)| k.as_str() == "server") else {
            let looks_like_server = map.keys().any(|k| SERVER_KEYS.contains(&k.as_str()));
            let mut diagnostic = Diagnostic::error(
                Code::WrongType,
                "a servers entry must be written `- server: { … }`",
                self.span(item),
            );
            if looks_like_server {
                diagnostic = diagnostic.with_help("nest the server's keys under `server:`, as in `- server: { unique_name: pg-main }`");
            }
            self.report(diagnostic);
            return None;
        };
        for (key, _) in map.iter().filter(|(k, _)| k.as_str() != "server") {
            let diagnostic = self.unknown_key(key, &["server"], "a servers entry");
            self.report(diagnostic);
        }
        let span = self.key_span(server_key);
        let body = self.mapping_or_empty(body, "server")?;
        let mut server = Server {
            unique_name: Spanned::new(String::new(), span),
            address: None,
            public_address: None,
            ssh: None,
            application_ssh: None,
            vendor: None,
            size: None,
            region: None,
            key_name: None,
            root_disk_size: None,
            root_disk_type: None,
            subnet_id: None,
            availability_zone: None,
            span,
        };
        let mut has_name = false;
        for (key, value) in self.entries(&body, SERVER_KEYS, "server", |_| None) {
            let text = |reader: &mut Self| reader.string(value, key.as_str());
            match key.as_str() {
                "unique_name" => {
                    if let Some(name) = text(self) {
                        self.check_name("unique_name", &name, true);
                        server.unique_name = name;
                        has_name = true;
                    }
                }
                "address" => server.address = text(self).and_then(|a| self.address(a, "address")),
                "public_address" => {
                    server.public_address =
                        text(self).and_then(|a| self.address(a, "public_address"))
                }
                "ssh" => server.ssh = self.read_ssh(key, value),
                "vendor" => server.vendor = text(self),
                "size" => server.size = text(self),
                "region" => server.region = text(self),
                "key_name" => server.key_name = text(self),
                "root_disk_size" => server.root_disk_size = self.size_in_gb(value),
                "root_disk_type" => server.root_disk_type = text(self),
                "subnet_id" => server.subnet_id = text(self),
                "availability_zone" => server.availability_zone = text(self),
                _ => {}
            }
        }
        if !has_name && !body.keys().any(|k| k.as_str() == "unique_name") {
            self.report(
                Diagnostic::error(Code::MissingKey, "the server has no `unique_name`", span)
                    .with_help("add unique_name: NAME; it must be unique across the application"),
            );
        }
        Some(server)
    }

    // ----- ssh settings and addresses -----

    /// The `ssh:` entry of `map`, if it has one.
    fn read_ssh_at(&mut self, map: &MarkedMappingNode) -> Option<SshSettings> {
        let (key, value) = map.iter().find(|(k, _)| k.as_str() == SSH_KEY)?;
        self.read_ssh(key, value)
    }

    /// `ssh: { user, port, identity_file, known_hosts_file, jump }`; each
    /// refused value is reported and left unset.
    fn read_ssh(&mut self, key: &MarkedScalarNode, node: &Node) -> Option<SshSettings> {
        let map = self.mapping_or_empty(node, "ssh settings")?;
        let mut ssh = SshSettings {
            span: self.key_span(key),
            ..SshSettings::default()
        };
        for (key, value) in self.entries(&map, SSH_KEYS, "ssh", |_| None) {
            let name = key.as_str();
            let Some(text) = self.string(value, &format!("ssh.{name}")) else {
                continue;
            };
            let problem = match name {
                "port" => match hosts::parse_port(&text.value) {
                    Ok(port) => {
                        ssh.port = Some(Spanned::new(port, text.span));
                        None
                    }
                    Err(problem) => Some(problem),
                },
                "user" => hosts::user_problem(&text.value),
                "identity_file" | "known_hosts_file" => hosts::path_problem(&text.value),
                _ => hosts::parse_jump(&text.value).err(),
            };
            if let Some(problem) = problem {
                let (accepted, help) = ssh_rule(name);
                self.report(
                    Diagnostic::error(
                        Code::InvalidSshSetting,
                        format!(
                            "invalid ssh.{name} \"{}\": {problem}; {accepted}",
                            text.value
                        ),
                        text.span,
                    )
                    .with_help(help),
                );
                continue;
            }
            match name {
                "user" => ssh.user = Some(text),
                "identity_file" => ssh.identity_file = Some(text),
                "known_hosts_file" => ssh.known_hosts_file = Some(text),
                "jump" => ssh.jump = Some(text),
                _ => {}
            }
        }
        Some(ssh)
    }

    /// An `address` or `public_address`, IPv6 brackets dropped; a refused
    /// one is reported and left unset.
    fn address(&mut self, text: Spanned<String>, key: &str) -> Option<Spanned<String>> {
        match hosts::parse_address(&text.value) {
            Ok(address) => Some(Spanned::new(address.host, text.span)),
            Err(problem) => {
                let help = if key == "public_address" {
                    "write the DNS name or IP address clients outside reach the host at, such as db5.example.com, 203.0.113.5 or 2001:db8::5"
                } else {
                    "write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11"
                };
                self.report(
                    Diagnostic::error(
                        Code::InvalidAddress,
                        format!(
                            "invalid {key} \"{}\": {problem}; {}",
                            text.value,
                            hosts::ADDRESS_FORMS
                        ),
                        text.span,
                    )
                    .with_help(help),
                );
                None
            }
        }
    }

    // ----- Values -----

    /// Known entries of `map`; unknown keys are reported with a suggestion.
    fn entries<'n>(
        &mut self,
        map: &'n MarkedMappingNode,
        allowed: &[&str],
        context: &str,
        misplaced: impl Fn(&str) -> Option<String>,
    ) -> Vec<Entry<'n>> {
        let mut known = Vec::new();
        for (key, value) in map.iter() {
            if allowed.contains(&key.as_str()) {
                known.push((key, value));
                continue;
            }
            let mut diagnostic = self.unknown_key(key, allowed, context);
            if let Some(help) = misplaced(key.as_str()) {
                diagnostic = diagnostic.with_help(help);
            }
            self.report(diagnostic);
        }
        known
    }

    fn unknown_key(&self, key: &MarkedScalarNode, allowed: &[&str], context: &str) -> Diagnostic {
        let mut message = format!("unknown key \"{}\"", key.as_str());
        if let Some(best) = suggest::did_you_mean(key.as_str(), allowed.iter().copied()) {
            message.push_str(&format!(", did you mean \"{best}\"?"));
        }
        Diagnostic::error(Code::UnknownKey, message, self.key_span(key))
            .with_help(format!("{context} accepts: {}", allowed.join(", ")))
    }

    fn mapping<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n MarkedMappingNode> {
        if is_null(node) {
            return None;
        }
        let map = node.as_mapping();
        if map.is_none() {
            self.wrong_type(node, &format!("a mapping ({what})"));
        }
        map
    }

    /// Like [`Self::mapping`], treating an empty value as an empty mapping.
    fn mapping_or_empty(&mut self, node: &Node, what: &str) -> Option<MarkedMappingNode> {
        if is_null(node) {
            return Some(MarkedMappingNode::new_empty(*node.span()));
        }
        self.mapping(node, what).cloned()
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        match node.as_scalar() {
            Some(scalar) if !is_null(node) => Some(Spanned::new(
                scalar.as_str().to_string(),
                yaml::scalar_span(self.source, scalar),
            )),
            _ => {
                self.wrong_type(node, &format!("a value ({what})"));
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node) -> Option<Spanned<bool>> {
        let text = self.string(node, "true or false")?;
        match text.value.to_ascii_lowercase().as_str() {
            "true" => Some(Spanned::new(true, text.span)),
            "false" => Some(Spanned::new(false, text.span)),
            other => {
                let mut diagnostic = Diagnostic::error(
                    Code::InvalidValue,
                    format!("expected true or false, found \"{}\"", text.value),
                    text.span,
                );
                if matches!(other, "yes" | "no" | "on" | "off" | "y" | "n") {
                    diagnostic =
                        diagnostic.with_help("YAML 1.2 reads only true and false as booleans");
                }
                self.report(diagnostic);
                None
            }
        }
    }

    fn size_in_gb(&mut self, node: &Node) -> Option<Spanned<u64>> {
        let text = self.string(node, "size in GB")?;
        match text.value.parse::<u64>() {
            Ok(size) if size > 0 => Some(Spanned::new(size, text.span)),
            _ => {
                self.report(
                    Diagnostic::error(
                        Code::InvalidValue,
                        format!(
                            "expected a whole number of gigabytes, found \"{}\"",
                            text.value
                        ),
                        text.span,
                    )
                    .with_help("write the size in GB without a unit, such as 100"),
                );
                None
            }
        }
    }

    fn wrong_type(&mut self, node: &Node, expected: &str) {
        let span = self.span(node);
        self.report(Diagnostic::error(
            Code::WrongType,
            format!("expected {expected}, found {}", kind(node)),
            span,
        ));
    }

    /// Names end up in paths, flags and variable names, so they are kept to
    /// letters, digits, `_` and `-` (and `.` in server names, as hostnames).
    fn check_name(&mut self, what: &str, name: &Spanned<String>, allow_dots: bool) {
        if let Some(reason) = name_problem(&name.value, allow_dots) {
            self.report(
                Diagnostic::error(
                    Code::InvalidName,
                    format!("invalid {what} \"{}\": {reason}", name.value),
                    name.span,
                )
                .with_help(name_rule(allow_dots)),
            );
        }
    }
}

/// The longest name: a DNS label's limit, since names become hostnames.
const NAME_MAX_LEN: usize = 63;

/// Why `name` is not a valid name, if it is not.
fn name_problem(name: &str, allow_dots: bool) -> Option<String> {
    let valid_char =
        |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || (allow_dots && c == '.');
    let Some(first) = name.chars().next() else {
        return Some("it is empty".to_string());
    };
    if let Some(bad) = name.chars().find(|&c| !valid_char(c)) {
        let shown = match bad {
            ' ' => "a space".to_string(),
            c if crate::escape::is_unsafe_for_terminal(c) => crate::escape::describe_control(c),
            c => format!("`{c}`"),
        };
        return Some(format!("it contains {shown}, which names may not hold"));
    }
    if !first.is_ascii_alphanumeric() {
        return Some(format!("it starts with `{first}`, not a letter or digit"));
    }
    let length = name.chars().count();
    (length > NAME_MAX_LEN)
        .then(|| format!("it is {length} characters long, more than {NAME_MAX_LEN}"))
}

fn name_rule(allow_dots: bool) -> String {
    let allowed = if allow_dots {
        "letters, digits, `_`, `-` and `.`"
    } else {
        "letters, digits, `_` and `-`"
    };
    format!(
        "names are used in paths, hostnames and variable names: use at most \
         {NAME_MAX_LEN} characters: {allowed}, starting with a letter or digit"
    )
}

/// Group-level keys that belong one level down get a pointed hint.
fn misplaced_in_group(key: &str) -> Option<String> {
    if CONFIGURATION_KEYS.contains(&key) {
        Some(format!("`{key}` belongs under `configuration:`"))
    } else if SERVER_KEYS.contains(&key) {
        Some(format!(
            "`{key}` belongs to a server: write it under `servers: - server:`"
        ))
    } else {
        None
    }
}

/// A top-level mapping that itself holds database sections or an
/// application is an environment (`production:`), not a platform component.
fn looks_like_environment(node: &Node) -> bool {
    node.as_mapping().is_some_and(|map| {
        map.keys()
            .any(|k| k.as_str() == APPLICATION_KEY || DbType::from_key(k.as_str()).is_some())
    })
}

/// What an `ssh:` key accepts, and the help for a refused value.
fn ssh_rule(key: &str) -> (&'static str, &'static str) {
    match key {
        "user" => (
            hosts::USER_FORM,
            "write the login name on the host, such as `user: deploy`",
        ),
        "port" => (
            hosts::PORT_FORM,
            "write the port the host's sshd listens on, such as `port: 2222`",
        ),
        "identity_file" => (
            hosts::PATH_FORM,
            "write the private key's path, such as `identity_file: ~/.ssh/id_ed25519`",
        ),
        "known_hosts_file" => (
            hosts::PATH_FORM,
            "write the known-hosts file's path, such as `known_hosts_file: ~/.ssh/known_hosts`",
        ),
        _ => (
            hosts::JUMP_FORM,
            "write the bastion host, such as `jump: ops@bastion.example:22`; chain several hosts in your ssh configuration",
        ),
    }
}

/// A network of `allow_from` as its CIDR text, or why not with a hint.
fn parse_network(text: &str) -> Result<String, (String, String)> {
    let text = text.trim();
    let network = match text.parse::<ipnet::IpNet>() {
        Ok(network) => network,
        Err(_) => match text.parse::<std::net::IpAddr>() {
            Ok(address) => ipnet::IpNet::from(address),
            Err(_) => {
                return Err((
                    "not an IP network".into(),
                    "write a network as ADDRESS/PREFIX (10.0.1.0/24, 2001:db8::/64) or one address (192.0.2.7)".into(),
                ));
            }
        },
    };
    if network.trunc() != network {
        return Err((
            format!("it has host bits set (the network is {})", network.trunc()),
            format!(
                "write {} for the whole network, or {}/{} for the one address",
                network.trunc(),
                network.addr(),
                network.max_prefix_len()
            ),
        ));
    }
    Ok(network.to_string())
}
