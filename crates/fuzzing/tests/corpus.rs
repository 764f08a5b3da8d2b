//! Replays every committed fuzz input, the seeds and the regressions (inputs that once
//! broke a property), through the target's properties.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable fuzz input directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_regression_keeps_its_properties() {
    let mut replayed = 0;
    let mut broken = Vec::new();
    for (name, target) in webriskops_fuzzing::TARGETS {
        let mut files = inputs(&fuzz_dir().join("seeds").join(name));
        assert!(!files.is_empty(), "fuzz/seeds/{name} has no seed inputs");
        files.extend(inputs(&fuzz_dir().join("regressions").join(name)));
        for file in files {
            let data = std::fs::read(&file).expect("readable fuzz input");
            let outcome = std::panic::catch_unwind(|| target(&data));
            if outcome.is_err() {
                broken.push(format!("{name}: {}", file.display()));
            }
            replayed += 1;
        }
    }
    assert!(replayed > 0);
    assert!(
        broken.is_empty(),
        "inputs that break a property (each panic is printed above):\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in webriskops_fuzzing::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{name}.rs is missing"
        );
    }
}
