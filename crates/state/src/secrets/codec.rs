//! How secrets are written and read. Every [`Secret`] serialises through
//! here, whatever struct holds it, so a secret added to the state later is
//! encrypted without anyone remembering to: the key of the document being
//! written or read sits in a per-thread context for the length of one
//! (de)serialisation.
//!
//! On disk a plaintext secret is a JSON string and an encrypted one is
//! `{"sealed": "<base64 of a 12-byte nonce, then AES-256-GCM ciphertext and tag>"}`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::keyring::{Key, NONCE_BYTES};
use crate::model::Secret;

/// What a document held, counted while it was (de)serialised.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Secrets written as plain strings.
    pub(crate) plaintext: usize,
    /// Secrets left sealed: read without the key, or written back so.
    pub(crate) sealed: usize,
}

struct Context {
    key: Option<Key>,
    counts: Counts,
    /// Nonces met while reading: one nonce twice under a key is refused,
    /// since AES-GCM loses its guarantees when a nonce repeats.
    nonces: HashSet<Vec<u8>>,
}

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// Runs one (de)serialisation with `key` (or none) in context.
pub(crate) fn with_key<R>(key: Option<Key>, work: impl FnOnce() -> R) -> (R, Counts) {
    let previous = CONTEXT.with(|c| {
        c.borrow_mut().replace(Context {
            key,
            counts: Counts::default(),
            nonces: HashSet::new(),
        })
    });
    let result = work();
    let context = CONTEXT.with(|c| std::mem::replace(&mut *c.borrow_mut(), previous));
    (result, context.map(|c| c.counts).unwrap_or_default())
}

/// The in-memory form of a secret read without its key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Plain(String),
    /// Base64 of the nonce and ciphertext, kept as read.
    Sealed(String),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum OnDisk {
    Plain(String),
    Sealed { sealed: String },
}

fn write_text<S: Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    let sealed = CONTEXT.with(|c| {
        let mut context = c.borrow_mut();
        let Some(context) = context.as_mut() else {
            return Ok(None);
        };
        match &context.key {
            Some(key) => key
                .seal(text.as_bytes())
                .map(|bytes| Some(BASE64.encode(bytes))),
            None => {
                context.counts.plaintext += 1;
                Ok(None)
            }
        }
    });
    match sealed.map_err(serde::ser::Error::custom)? {
        Some(sealed) => OnDisk::Sealed { sealed }.serialize(serializer),
        None => serializer.serialize_str(text),
    }
}

fn write_value<S: Serializer>(value: &Value, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Value::Plain(text) => write_text(text, serializer),
        Value::Sealed(sealed) => {
            CONTEXT.with(|c| {
                if let Some(context) = c.borrow_mut().as_mut() {
                    context.counts.sealed += 1;
                }
            });
            OnDisk::Sealed {
                sealed: sealed.clone(),
            }
            .serialize(serializer)
        }
    }
}

fn read_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    match OnDisk::deserialize(deserializer)? {
        OnDisk::Plain(text) => Ok(Value::Plain(text)),
        OnDisk::Sealed { sealed } => open(&sealed).map_err(serde::de::Error::custom),
    }
}

/// Opens a sealed value with the context's key, or keeps it sealed when
/// there is none. Public to the crate for the property tests' reader.
pub(crate) fn open(sealed: &str) -> Result<Value, String> {
    CONTEXT.with(|c| {
        let mut context = c.borrow_mut();
        let Some(context) = context.as_mut() else {
            return Ok(Value::Sealed(sealed.to_string()));
        };
        let Some(key) = &context.key else {
            context.counts.sealed += 1;
            return Ok(Value::Sealed(sealed.to_string()));
        };
        let bytes = BASE64
            .decode(sealed)
            .map_err(|_| "a sealed secret is not base64".to_string())?;
        let nonce = bytes.get(..NONCE_BYTES).unwrap_or(&bytes).to_vec();
        if !context.nonces.insert(nonce) {
            return Err("two secrets share a nonce; the state was not written by dbgroups".into());
        }
        let plain = key.open(&bytes).ok_or_else(|| {
            "a secret does not decrypt: it was altered, or sealed under another key".to_string()
        })?;
        String::from_utf8(plain)
            .map(Value::Plain)
            .map_err(|_| "a decrypted secret is not UTF-8".to_string())
    })
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        write_value(self.value(), serializer)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_value(deserializer).map(Secret::from_value)
    }
}

/// An environment value that is secret but could not be opened: kept in
/// the map as this prefix and the sealed text, so it is written back as
/// it was read. No real value starts with a NUL.
pub const SEALED_VARIABLE_PREFIX: &str = "\u{0}sealed:";

/// `serde(with)` for the environment: the values of secret variables
/// (passwords, URLs with a password) go through the same sealing as
/// every [`Secret`].
pub(crate) mod environment {
    use super::*;
    use dbgroups_manifest::env_names;

    pub(crate) fn serialize<S: Serializer>(
        map: &BTreeMap<String, String>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut out = serializer.serialize_map(Some(map.len()))?;
        for (name, text) in map {
            if let Some(sealed) = text.strip_prefix(SEALED_VARIABLE_PREFIX) {
                out.serialize_entry(name, &Secret::from_value(Value::Sealed(sealed.into())))?;
            } else if env_names::is_secret(name) {
                out.serialize_entry(name, &Secret::new(text.clone()))?;
            } else {
                out.serialize_entry(name, text)?;
            }
        }
        out.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, String>, D::Error> {
        let read: BTreeMap<String, Secret> = BTreeMap::deserialize(deserializer)?;
        Ok(read
            .into_iter()
            .map(|(name, secret)| {
                let text = match secret.value() {
                    Value::Plain(text) => text.clone(),
                    Value::Sealed(sealed) => format!("{SEALED_VARIABLE_PREFIX}{sealed}"),
                };
                (name, text)
            })
            .collect())
    }
}
