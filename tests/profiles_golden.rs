//! The committed demo profiles are what their committed recording makes: `profgen synth` of
//! `profiles/demo-nginx/recording.json`, with the demo's arguments, reproduces every file of
//! the set byte for byte. A change to a synthesizer that changes the demo's artifacts fails
//! here until the set is made again (`cargo xtask demo`) and the change is reviewed.

#[path = "support/mod.rs"]
mod support;

use std::{collections::BTreeMap, fs, path::Path, process::Command};

use support::{assert_success, output, profgen_binary};

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_demo_set_is_made_again_byte_for_byte_from_its_recording() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/demo-nginx");
    let out = tempfile::tempdir().unwrap();
    let made = output(
        Command::new(profgen_binary())
            .arg("synth")
            .arg(committed.join("recording.json"))
            .arg("--out")
            .arg(out.path())
            .args(profgen_demo::synth_args()),
    );
    assert_success("profgen synth of the committed recording", &made);

    let (want, got) = (files(&committed), files(out.path()));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "the set's files differ"
    );
    for (name, bytes) in &want {
        assert!(
            got[name] == *bytes,
            "{name} differs from what its recording makes:\n--- committed\n{}\n--- made\n{}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&got[name])
        );
    }
}
