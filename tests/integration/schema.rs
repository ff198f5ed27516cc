//! The JSON Schema from `dbgroups schema` agrees with the validator: every
//! example passes it, and shape mistakes fail it as they fail `validate`.

use marked_yaml::Node;
use serde_json::{Value, json};

use crate::common::repo_path;

/// Reads YAML the way yaml-language-server does: unquoted scalars become
/// booleans and numbers where they look like them.
fn yaml_to_json(node: &Node) -> Value {
    match node {
        Node::Scalar(scalar) => {
            let text = scalar.as_str();
            if !scalar.may_coerce() {
                return json!(text);
            }
            match text {
                "true" => json!(true),
                "false" => json!(false),
                "" | "~" | "null" => Value::Null,
                _ => text
                    .parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| text.parse::<f64>().map(Value::from))
                    .unwrap_or_else(|_| json!(text)),
            }
        }
        Node::Sequence(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.as_str().to_string(), yaml_to_json(value)))
                .collect(),
        ),
    }
}

fn schema_errors(yaml: &str) -> Vec<String> {
    let schema = dbgroups_manifest::schema::manifest_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    // Quoted scalars stay text, as in an editor (without this option
    // marked-yaml lets every scalar coerce).
    let options = marked_yaml::LoaderOptions::default().prevent_coercion(true);
    let node = marked_yaml::parse_yaml_with_options(0, yaml, options).expect("test YAML parses");
    let document = yaml_to_json(&node);
    validator
        .iter_errors(&document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn every_valid_example_passes_the_schema() {
    for example in [
        "examples/quickstart/manifest.yml",
        "examples/published-mysql/manifest.yml",
        "examples/replication/manifest.yml",
        "examples/cross-app/shop.yml",
        "examples/cross-app/analytics.yml",
    ] {
        let text = std::fs::read_to_string(repo_path(example)).expect("example readable");
        let errors = schema_errors(&text);
        assert!(errors.is_empty(), "{example}: {errors:?}");
    }
}

#[test]
fn shape_mistakes_fail_the_schema() {
    let cases = [
        (
            "an unknown configuration key",
            "postgresql:\n  configuration: { verison: '15' }\n",
        ),
        (
            "engine on redis",
            "redis:\n  configuration: { engine: redis }\n",
        ),
        (
            "a server without unique_name",
            "redis:\n  servers:\n    - server: { size: large }\n",
        ),
        (
            "an unsupported vendor",
            "redis:\n  servers:\n    - server: { unique_name: r, vendor: aws }\n",
        ),
        (
            "a short form beside groups",
            "redis:\n  servers: []\n  groups: {}\n",
        ),
        ("primary as a string", "mysql:\n  primary: 'yes'\n"),
    ];
    for (what, yaml) in cases {
        assert!(
            !schema_errors(yaml).is_empty(),
            "the schema accepted {what}"
        );
    }
}

#[test]
fn the_schema_lists_exactly_the_keys_the_reader_accepts() {
    use dbgroups_manifest::keys::{CONFIGURATION_KEYS, GROUP_KEYS, SERVER_KEYS, SSH_KEYS};
    let schema = dbgroups_manifest::schema::manifest_schema();
    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let sorted = |list: &[&str]| -> Vec<String> {
        let mut list: Vec<String> = list.iter().map(|k| k.to_string()).collect();
        list.sort();
        list
    };
    let group = &schema["definitions"]["mysqlGroup"];
    assert_eq!(keys(group), sorted(GROUP_KEYS));
    assert_eq!(
        keys(&group["properties"]["configuration"]),
        sorted(CONFIGURATION_KEYS)
    );
    let server = &schema["definitions"]["serverEntry"]["properties"]["server"];
    assert_eq!(keys(server), sorted(SERVER_KEYS));
    assert_eq!(keys(&schema["definitions"]["ssh"]), sorted(SSH_KEYS));
}

#[test]
fn schema_and_validator_agree_on_ssh_servers() {
    let accepted = [
        "application: shop\nssh: { user: deploy, identity_file: ~/.ssh/id_ed25519 }\npostgresql:\n  groups:\n    default:\n      configuration: { version: '15' }\n      servers:\n        - server: { unique_name: pg-main, address: 10.0.0.11 }\n        - server: { unique_name: pg-replica-1, address: 10.0.0.12, ssh: { port: 2222 } }\n",
        "redis:\n  servers:\n    - server: { unique_name: r, address: '[fd00::1]', public_address: r.example.com, ssh: { jump: 'ops@bastion:22', known_hosts_file: /etc/k } }\n",
        "production:\n  ssh: { user: deploy }\n  redis:\n    servers: []\n",
    ];
    for yaml in accepted {
        assert!(!validator_refuses(yaml), "validate refused {yaml:?}");
        let errors = schema_errors(yaml);
        assert!(errors.is_empty(), "the schema refused {yaml:?}: {errors:?}");
    }
    let refused = [
        "ssh: { usr: deploy }\n",
        "ssh: { user: -x }\n",
        "ssh: { port: 0 }\n",
        "ssh: { port: 70000 }\n",
        "ssh: { jump: -J }\n",
        "ssh: { identity_file: '-oProxyCommand=sh' }\n",
        "redis:\n  servers:\n    - server: { unique_name: r, address: -oProxyCommand=sh }\n",
        "redis:\n  servers:\n    - server: { unique_name: r, address: 'h;rm -rf /' }\n",
        "redis:\n  servers:\n    - server: { unique_name: r, address: db1, ssh: { user: 'a b' } }\n",
    ];
    for yaml in refused {
        assert!(validator_refuses(yaml), "validate accepted {yaml:?}");
        assert!(
            !schema_errors(yaml).is_empty(),
            "the schema accepted {yaml:?}"
        );
    }
}

/// Whether `validate` finds an error in `yaml`.
fn validator_refuses(yaml: &str) -> bool {
    let source = dbgroups_manifest::SourceFile::new("manifest.yml", yaml);
    let options = dbgroups_manifest::ParseOptions {
        environment: Some("production".to_string()),
        application: Some("shop".to_string()),
    };
    let with_environment = dbgroups_manifest::parse(&source, &options);
    let without = dbgroups_manifest::parse(&source, &Default::default());
    // An environment manifest needs --environment; the others refuse it.
    let parsed = if yaml.starts_with("production:") {
        with_environment
    } else {
        without
    };
    parsed.diagnostics.has_errors()
}

#[test]
fn schema_and_validator_agree_on_sections_environments_and_versions() {
    let refused = [
        "postgressql:\n  servers: []\n",
        "Redis:\n  servers: []\n",
        "mongdb:\n  servers: []\n",
        "applicaton: shop\n",
        "production:\n  application: shop\n  reddis:\n    servers: []\n",
        "production:\n  redis:\n    servers:\n      - server: { size: large }\n",
        "postgresql:\n  configuration: { version: '19' }\n",
        "mysql:\n  configuration: { engine: mariadb, version: '8.4' }\n",
        "mysql:\n  configuration: { version: '10.11' }\n",
        "redis:\n  configuration: { version: 'latest' }\n",
    ];
    for yaml in refused {
        assert!(validator_refuses(yaml), "validate accepted {yaml:?}");
        assert!(
            !schema_errors(yaml).is_empty(),
            "the schema accepted {yaml:?}"
        );
    }
    let accepted = [
        "application: shop\nrails:\n  configuration: { ruby_version: '3.3' }\ndocker: {}\n",
        "production:\n  application: shop\n  redis:\n    servers: []\n",
        "postgresql:\n  configuration: { version: '15.4' }\n",
        "postgresql:\n  configuration: { version: 16 }\n",
        "mysql:\n  configuration: { engine: mariadb, version: '10.11' }\n",
        "mysql:\n  configuration: { engine: percona, version: '8.4' }\n",
        "mysql:\n  configuration: { version: '8.4.2' }\n",
        "mongodb:\n  configuration: { version: '8' }\n",
    ];
    for yaml in accepted {
        assert!(!validator_refuses(yaml), "validate refused {yaml:?}");
        let errors = schema_errors(yaml);
        assert!(errors.is_empty(), "the schema refused {yaml:?}: {errors:?}");
    }
}

#[test]
fn each_engine_lists_its_own_series_once() {
    let schema = dbgroups_manifest::schema::manifest_schema();
    let mysql = &schema["definitions"]["mysqlGroup"]["properties"]["configuration"];
    let listed = |version: &Value| -> Vec<String> {
        version["anyOf"][0]["enum"]
            .as_array()
            .expect("an enumeration")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let mysql_versions = listed(&mysql["allOf"][0]["then"]["properties"]["version"]);
    let mut unique = mysql_versions.clone();
    unique.dedup();
    assert_eq!(mysql_versions, unique);
    assert!(mysql_versions.contains(&"9.5".to_string()));
    assert!(
        !mysql_versions.contains(&"10.11".to_string()),
        "MariaDB's series are not MySQL's"
    );
    let mariadb = &mysql["allOf"][2]["then"]["properties"]["version"];
    assert_eq!(
        listed(mariadb),
        ["10.3", "10.4", "10.5", "10.6", "10.11", "11.4", "11.8"]
    );
}
