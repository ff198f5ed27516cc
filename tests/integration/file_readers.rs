//! Property tests of the readers of files dbgroups did not necessarily
//! write itself: whatever bytes a state file or a plan file holds (a real
//! one truncated, bit-flipped or spliced, or noise), reading it never
//! panics and never hangs, a damaged file is refused, and a refused state
//! file is left exactly as it was.
//!
//! Case counts are set here and recorded in docs/reliability.md; set
//! PROPTEST_CASES to run more (`scripts/fuzz.sh` does).

use dbgroups_state::{DirectoryStore, StateStore};
use proptest::prelude::*;

use crate::common::{applied, plan_with};
// The manifest whose state and plan files are damaged.
use crate::plans::BASE as MANIFEST;

fn valid_state_file() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("dir");
    let store = DirectoryStore::new(dir.path());
    let lock = store
        .lock(
            dbgroups_state::LockScope::Everything,
            "seed",
            std::time::Duration::from_secs(1),
        )
        .expect("lock");
    let mut state = applied(MANIFEST);
    state.serial = 0; // a first save
    store.save(&lock, &mut state).expect("saves");
    std::fs::read(dir.path().join("apps/shop.json")).expect("written")
}

fn valid_plan_file() -> Vec<u8> {
    let (plan, _) = plan_with(
        MANIFEST,
        None,
        &Default::default(),
        &dbgroups_plan::ObservedFacts::offline(),
        &Default::default(),
    );
    dbgroups_plan::planfile::PlanFile::new(
        plan,
        Default::default(),
        None,
        MANIFEST.as_bytes(),
        false,
        "test",
    )
    .to_json()
    .into_bytes()
}

/// A real file damaged the ways files get damaged: cut short, bits
/// flipped, a piece of it repeated elsewhere, or replaced by noise.
fn damaged(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    prop_oneof![
        (0..len).prop_map({
            let valid = valid.clone();
            move |cut| valid[..cut].to_vec()
        }),
        prop::collection::vec((0..len, any::<u8>()), 1..8).prop_map({
            let valid = valid.clone();
            move |flips| {
                let mut bytes = valid.clone();
                for (at, bits) in flips {
                    bytes[at] ^= bits | 1;
                }
                bytes
            }
        }),
        (0..len, 0..len, 0..len).prop_map(move |(from, to, at)| {
            let (from, to) = (from.min(to), from.max(to));
            let mut bytes = valid[..at].to_vec();
            bytes.extend_from_slice(&valid[from..to]);
            bytes.extend_from_slice(&valid[at..]);
            bytes
        }),
        prop::collection::vec(any::<u8>(), 0..512),
    ]
}

proptest! {
    #![proptest_config(crate::common::proptest_cases(2_000))]

    #[test]
    fn damaged_state_files_are_read_or_refused_and_never_changed(
        bytes in damaged(valid_state_file())
    ) {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join("apps")).expect("apps");
        let path = dir.path().join("apps/shop.json");
        std::fs::write(&path, &bytes).expect("write");
        let store = DirectoryStore::new(dir.path());
        match store.load("shop") {
            // A change that kept the JSON valid (inside a string, say) may
            // still read; then it reads as a state of this application.
            Ok(Some(state)) => prop_assert_eq!(state.application, "shop"),
            Ok(None) => prop_assert!(false, "a present file read as absent"),
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
        prop_assert_eq!(std::fs::read(&path).expect("still there"), bytes);
    }

    #[test]
    fn damaged_plan_files_are_refused_never_panic(bytes in damaged(valid_plan_file())) {
        let original = valid_plan_file();
        match dbgroups_plan::planfile::PlanFile::parse(&bytes) {
            // The checksum covers the whole plan: only bytes that do not
            // change its meaning (JSON whitespace) may still be accepted.
            Ok(file) => prop_assert_eq!(
                file.to_json(),
                dbgroups_plan::planfile::PlanFile::parse(&original).expect("valid").to_json()
            ),
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }
}
