//! The YAML layer: problems that used to stop the read (a duplicate key, an
//! anchor, a tag) are reported together with everything else, and what
//! YAML itself forbids (control characters, a second document) is refused
//! at its place. Each snapshot is the compact form, as in `rules.rs`.

use insta::assert_snapshot;

use crate::common::diagnose;

#[test]
fn duplicates_anchors_and_tags_do_not_hide_other_errors() {
    assert_snapshot!(diagnose(r#"application: shop
postgresql:
  configuration:
    verison: "15"
    encoding: utf8
    encoding: latin1
  servers:
    - server: &main { unique_name: pg-main, regoin: eu }
    - server: !custom { unique_name: pg-2 }
  servers: []
"#), @r#"
    manifest.yml:4:5: error[unknown-key]: unknown key "verison", did you mean "version"?
        help: configuration accepts: engine, version, operating_system, root_disk_size, root_disk_type, encoding, tags
    manifest.yml:6:5: error[duplicate-key]: duplicate key "encoding"
        help: a mapping holds each key once: merge the two entries or remove one
    manifest.yml:8:15: error[yaml-anchor]: YAML anchors and aliases are not supported in a manifest
        help: write the values out in full, so that each group reads on its own
    manifest.yml:8:45: error[unknown-key]: unknown key "regoin", did you mean "region"?
        help: server accepts: unique_name, address, public_address, ssh, vendor, size, region, key_name, root_disk_size, root_disk_type, subnet_id, availability_zone
    manifest.yml:9:15: error[yaml-tag]: YAML tags (`!name`) are not supported in a manifest
        help: remove the tag; values are read as plain text
    manifest.yml:10:3: error[duplicate-key]: duplicate key "servers"
        help: a mapping holds each key once: merge the two entries or remove one
    "#);
}

#[test]
fn a_tag_is_labelled_at_the_tag_itself() {
    let text = "application: shop\nredis: !group {servers: []}\n";
    let (source, parsed) = crate::common::parse_text(text, &Default::default());
    let tag = parsed
        .diagnostics
        .iter()
        .find(|d| d.code == dbgroups_manifest::Code::YamlTag)
        .expect("the tag is reported");
    let span = tag.primary_span();
    assert_eq!(&source.text()[span.start..span.end], "!group");
}

#[test]
fn a_second_document_is_an_error() {
    assert_snapshot!(diagnose("application: shop\nredis:\n  servers: []\n---\napplication: other\n"), @"
    manifest.yml:2:1: warning[no-servers]: group redis.default declares no servers
        help: it is valid, but nothing is built for it until it lists `servers:`
    manifest.yml:4:1: error[multiple-documents]: the manifest holds a second YAML document, which dbgroups would not read
        help: a manifest is one YAML document: merge the two, or remove the `---` line
    ");
    // A first document opened with `---` is one document.
    assert_snapshot!(diagnose("---\napplication: shop\nredis:\n  servers: []\n"), @"
    manifest.yml:3:1: warning[no-servers]: group redis.default declares no servers
        help: it is valid, but nothing is built for it until it lists `servers:`
    ");
}

#[test]
fn a_control_character_in_a_plain_scalar_is_refused_where_it_is() {
    // The rest of the file is still read: the name check runs too, on the
    // value with U+FFFD where the raw character was.
    assert_snapshot!(diagnose("application: shop\nredis:\n  servers:\n    - server:\n        unique_name: redis\u{1b}[2J\n        size: a\u{7}b\n    - server: { unique_name: \"ok\\e\" }\n"), @r#"
    manifest.yml:5:22: error[invalid-name]: invalid unique_name "redis�[2J": it contains `�`, which names may not hold
        help: names are used in paths, hostnames and variable names: use at most 63 characters: letters, digits, `_`, `-` and `.`, starting with a letter or digit
    manifest.yml:5:27: error[control-character]: the manifest holds the control character U+001B (ESC)
        help: YAML does not allow control characters in a file: remove it, or write it as an escape inside double quotes (such as "\e")
    manifest.yml:6:16: error[control-character]: the manifest holds the control character U+0007 (BEL)
        help: YAML does not allow control characters in a file: remove it, or write it as an escape inside double quotes (such as "\e")
    manifest.yml:7:30: error[invalid-name]: invalid unique_name "ok\u{1b}": it contains U+001B (ESC), which names may not hold
        help: names are used in paths, hostnames and variable names: use at most 63 characters: letters, digits, `_`, `-` and `.`, starting with a letter or digit
    "#);
}

#[test]
fn a_byte_order_mark_and_crlf_line_ends_read_as_plain_text() {
    let source = dbgroups_manifest::SourceFile::from_bytes(
        "manifest.yml",
        "\u{feff}application: shop\r\nredis:\r\n  servers:\r\n    - server: { unique_name: redis-main, regoin: eu }\r\n".as_bytes(),
    );
    let parsed = dbgroups_manifest::parse(&source, &Default::default());
    let found: Vec<String> = parsed
        .diagnostics
        .iter()
        .map(|d| d.to_compact_string(&source))
        .collect();
    assert_snapshot!(found.join("\n"), @r#"
    manifest.yml:4:42: error[unknown-key]: unknown key "regoin", did you mean "region"?
        help: server accepts: unique_name, address, public_address, ssh, vendor, size, region, key_name, root_disk_size, root_disk_type, subnet_id, availability_zone
    "#);
}
