//! The README's two commands are the ones that exist and the ones CI runs, and the README is
//! the front door to the manual in docs/.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The commands in the first fenced block after "## The two commands".
fn the_two_commands() -> Vec<String> {
    let readme = read("README.md");
    let section = readme
        .split("## The two commands")
        .nth(1)
        .expect("README has a 'The two commands' section");
    let block = section.split("```").nth(1).expect("a fenced block");
    block
        .lines()
        .skip(1)
        .filter_map(|l| l.split('#').next())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_gives_the_demo_and_the_test_command() {
    assert_eq!(
        the_two_commands(),
        ["bash scripts/demo.sh", "bash scripts/test-all.sh"]
    );
    for script in ["scripts/demo.sh", "scripts/test-all.sh"] {
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(script).is_file(),
            "{script}"
        );
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let ci = read(".ci/run");
    let commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('#') && !l.starts_with("set ") && !l.starts_with("cd ")
        })
        .collect();
    assert_eq!(commands, ["exec bash scripts/test-all.sh"]);
    assert!(the_two_commands().contains(&"bash scripts/test-all.sh".to_string()));
}

#[test]
fn the_test_command_runs_every_test_target() {
    let script = read("scripts/test-all.sh");
    assert!(
        script.contains("cargo test -j2 --locked --no-fail-fast --all-targets"),
        "all targets, including the e2e tests"
    );
    assert!(script.contains("cargo clippy") && script.contains("-D warnings"));
    assert!(script.contains("cargo fmt --all -- --check"));
    assert!(
        script.contains("bash scripts/book.sh"),
        "the manual is built and its links checked"
    );
    assert!(
        script.contains("bash scripts/alerts.sh"),
        "the alerting rules are checked"
    );
}

/// The README is the front door: short, and every page of the manual is reachable from it
/// (tests/docs/docs.rs checks that the links resolve).
#[test]
fn readme_is_short_and_links_every_page_of_the_manual() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; the manual in docs/ is the place for more"
    );
    let summary = read("docs/SUMMARY.md");
    for target in summary
        .split("](")
        .skip(1)
        .filter_map(|s| s.split(')').next())
    {
        assert!(
            readme.contains(&format!("](docs/{target})")),
            "README.md does not link docs/{target}, a page of docs/SUMMARY.md"
        );
    }
    for product in [
        "keyring_okv.so",
        "component_keyring_okv.so",
        "kmip_key_management.so",
        "keyring-okv",
    ] {
        assert!(
            readme.contains(product),
            "README.md does not name {product}"
        );
    }
}
