//! The seed corpus (`seeds/<target>/`) and every crash found so far (`regressions/<target>/`),
//! run through their targets as ordinary tests, on stable and without libFuzzer: a fix that
//! breaks a target's invariant, or brings back a crash, fails here.

use std::path::{Path, PathBuf};

use vigil_fuzz::TARGETS;

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

/// The target names the directories under `dir` have.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn run(kind: &str, min_per_target: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(kind);
    for name in names(&root) {
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "{kind}/{name} is not a target"
        );
    }
    for (name, target) in TARGETS {
        let files = inputs(&root.join(name));
        assert!(
            files.len() >= min_per_target,
            "{kind}/{name} has {} inputs",
            files.len()
        );
        for f in files {
            let data = std::fs::read(&f).unwrap();
            vigil_fuzz::running(&f.display().to_string());
            target(&data);
        }
    }
}

#[test]
fn the_seed_corpus_holds_every_targets_invariants() {
    run("seeds", 3);
}

#[test]
fn crashes_found_by_fuzzing_stay_fixed() {
    run("regressions", 0);
}

#[test]
fn every_target_has_a_binary() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "{name} has no [[bin]] in fuzz/Cargo.toml"
        );
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz_targets")
            .join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&src).unwrap();
        assert!(
            text.contains(&format!("vigil_fuzz::targets::{name}(data)")),
            "{}",
            src.display()
        );
    }
}
