//! Secrets encrypted at rest (docs/state.md, "Encryption"): a state
//! document's secrets are sealed with AES-256-GCM under a key derived from
//! the passphrase; everything else stays readable.

pub(crate) mod codec;
mod keyring;

pub use codec::SEALED_VARIABLE_PREFIX;
pub use keyring::{EncryptionHeader, Keyring, MIN_PASSPHRASE_CHARS, PBKDF2_ITERATIONS};

use std::sync::Arc;

use crate::error::StateError;
use crate::model::AppState;
use codec::Counts;

/// What a store does with secrets: the passphrase, if any; whether the
/// running command needs the secrets themselves; whether plain text may be
/// written where the backend refuses it by default.
#[derive(Debug, Clone, Default)]
pub struct SecretPolicy {
    pub keyring: Option<Arc<Keyring>>,
    /// Refuse to load a state whose secrets cannot be opened (commands that
    /// talk to servers); `false` for those that only show the state.
    pub secrets_needed: bool,
    pub allow_plaintext: bool,
}

/// Reads a state document's JSON value. When the command needs the
/// secrets, they are opened if the keyring opens the document's key check
/// (and refused without a keyring); otherwise they stay sealed (and
/// [`AppState::has_sealed_secrets`] says so).
pub(crate) fn decode(
    value: serde_json::Value,
    policy: &SecretPolicy,
) -> Result<Result<AppState, serde_json::Error>, StateError> {
    let application = value
        .get("application")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string();
    let header: Option<EncryptionHeader> = value
        .get("encryption")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| StateError::Crypto(format!("the encryption header is unreadable: {e}")))?;
    // A command that does not use the secrets leaves them sealed even
    // with a passphrase: deriving the key is slow on purpose.
    let key = match (&header, &policy.keyring) {
        (Some(header), Some(keyring)) if policy.secrets_needed => Some(
            keyring
                .key_for(header)?
                .ok_or(StateError::WrongPassphrase {
                    application: application.clone(),
                })?,
        ),
        _ => None,
    };
    let (state, counts) = codec::with_key(key, || serde_json::from_value::<AppState>(value));
    if policy.secrets_needed && counts.sealed > 0 {
        return Err(StateError::PassphraseRequired { application });
    }
    Ok(state)
}

/// Writes a state document: its secrets sealed when there is a keyring
/// (under the header it was read with, or a fresh one), plain otherwise.
/// A state holding secrets it could not open is never written: they would
/// be lost or mixed with others under another key.
pub(crate) fn encode(
    state: &mut AppState,
    keyring: Option<&Keyring>,
) -> Result<(Vec<u8>, Counts), StateError> {
    let key = match keyring {
        Some(keyring) => {
            let existing = match &state.encryption {
                Some(header) => keyring.key_for(header)?.map(|k| (header.clone(), k)),
                None => None,
            };
            let (header, key) = match existing {
                Some(found) => found,
                None => keyring.new_header()?,
            };
            state.encryption = Some(header);
            Some(key)
        }
        None => None,
    };
    let (text, counts) = codec::with_key(key, || serde_json::to_vec_pretty(&*state));
    let text = text.map_err(|e| StateError::Crypto(e.to_string()))?;
    if counts.sealed > 0 {
        return Err(StateError::PassphraseRequired {
            application: state.application.clone(),
        });
    }
    if keyring.is_none() && counts.plaintext == 0 && state.encryption.is_some() {
        // No secret at all: the header says nothing true any more.
        state.encryption = None;
        return encode(state, None);
    }
    Ok((text, counts))
}

/// Re-encrypts a state document under `to` (or writes it in plain text
/// when `to` is `None`), opening it with `from`: `state rekey`.
pub(crate) fn reseal(
    value: serde_json::Value,
    from: Option<&Arc<Keyring>>,
    to: Option<&Keyring>,
) -> Result<Vec<u8>, StateError> {
    let policy = SecretPolicy {
        keyring: from.cloned(),
        secrets_needed: true,
        allow_plaintext: true,
    };
    let mut state = decode(value, &policy)?.map_err(|e| StateError::Crypto(e.to_string()))?;
    state.encryption = None;
    Ok(encode(&mut state, to)?.0)
}

/// Whether a stored document holds secrets in plain text.
pub(crate) fn plaintext_secrets(state: &AppState) -> usize {
    codec::with_key(None, || serde_json::to_vec(state))
        .1
        .plaintext
}

/// Whether a loaded state holds secrets it could not open.
pub(crate) fn sealed_secrets(state: &AppState) -> usize {
    codec::with_key(None, || serde_json::to_vec(state)).1.sealed
}

#[cfg(test)]
mod tests;
