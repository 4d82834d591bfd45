//! Statements about the packages, the examples and the sealed key cache that the files they
//! describe can contradict: each is checked against those files, so that a change to one shows
//! up in the other.

use super::read;

/// The text with every run of whitespace made one space (the Markdown wraps lines anywhere).
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The lines of a `[section]` of Cargo.toml, up to the next section header.
fn manifest_section(manifest: &str, header: &str) -> Vec<String> {
    manifest
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .map(str::to_string)
        .collect()
}

/// The value of a one-line `key = "value"` in those lines.
fn manifest_value(lines: &[String], key: &str) -> Option<String> {
    lines.iter().find_map(|l| {
        let rest = l.strip_prefix(key)?.trim_start().strip_prefix('=')?.trim();
        Some(rest.trim_matches('"').to_string())
    })
}

#[test]
fn package_descriptions_do_not_promise_a_drop_in_replacement() {
    let manifest = read("Cargo.toml");
    let readme = read("README.md");
    // The README's own wording of what carries over from Oracle's plugin and what does not.
    let caveat = "keys stored by Oracle's plugin do not carry over by themselves";
    assert!(
        flat(&readme).contains(caveat),
        "README.md no longer says {caveat:?}"
    );
    let description = manifest_section(&manifest, "[package.metadata.deb]").join("\n");
    assert!(
        flat(&description).contains(caveat),
        "the keyring-okv package's extended-description (Cargo.toml) does not say {caveat:?}"
    );
    let mut files = vec!["Cargo.toml".to_string(), "README.md".to_string()];
    files.extend(super::pages().into_iter().map(|p| format!("docs/{p}")));
    for file in files {
        assert!(
            !flat(&read(&file).to_lowercase()).contains("drop-in"),
            "{file} says drop-in: keys stored by Oracle's plugin do not carry over by themselves"
        );
    }
}

#[test]
fn mariadb_package_dependencies_are_the_declared_ones() {
    let manifest = read("Cargo.toml");
    let variant = manifest_section(&manifest, "[package.metadata.deb.variants.mariadb]");
    let packages = read("docs/packages.md");
    let name = manifest_value(&variant, "name").expect("the mariadb variant's name");
    let bullet = packages
        .split(&format!("\n## {name} "))
        .nth(1)
        .and_then(|section| section.split("* **Dependencies:**").nth(1))
        .and_then(|part| part.split("\n* **").next())
        .expect("docs/packages.md has the MariaDB package's Dependencies bullet");
    let bullet = flat(bullet);
    let depends = manifest_value(&variant, "depends").expect("the mariadb variant's depends");
    for dep in depends.split(',').map(str::trim).filter(|d| *d != "$auto") {
        assert!(
            bullet.contains(&format!("`{dep}`")),
            "docs/packages.md: the MariaDB package depends on {dep} (Cargo.toml), not said"
        );
    }
    for (field, key) in [("Recommends", "recommends"), ("Enhances", "enhances")] {
        let value = manifest_value(&variant, key).unwrap_or_else(|| panic!("{key}"));
        assert!(
            bullet.contains(&format!("`{field}: {value}`")),
            "docs/packages.md does not say `{field}: {value}` (Cargo.toml's mariadb variant)"
        );
    }
    assert!(
        !manifest_value(&variant, "depends")
            .unwrap()
            .contains("mariadb-server"),
        "the docs say the package depends on no server package"
    );
    assert!(
        !flat(&packages).contains("exact version"),
        "docs/packages.md speaks of exact-version dependencies: neither our package nor \
         Debian's own MariaDB plugin packages declare one"
    );
}

/// The keys `src/config/ora.rs` accepts, from its `KEYS` table.
fn ora_keys() -> Vec<String> {
    let source = read("src/config/ora.rs");
    let table = source
        .split("const KEYS")
        .nth(1)
        .and_then(|rest| rest.split("];").next())
        .expect("src/config/ora.rs has its KEYS table");
    let keys: Vec<String> = table
        .split("(\"")
        .skip(1)
        .filter_map(|item| item.split('"').next())
        .map(str::to_string)
        .collect();
    assert!(keys.len() >= 8, "KEYS table not read: {keys:?}");
    keys
}

#[test]
fn the_example_okvclient_ora_shows_every_key() {
    let path = "packaging/deb/examples/mysql-keyring-okv/okvclient.ora";
    let example = read(path);
    let written: Vec<String> = example
        .lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .filter(|k| !k.is_empty() && !k.contains(' '))
        .collect();
    let keys = ora_keys();
    for key in &keys {
        assert!(
            written.contains(key),
            "{path} does not show {key} (accepted by src/config/ora.rs): add it, commented, \
             with its default"
        );
    }
    for key in &written {
        assert!(
            keys.contains(key),
            "{path} shows {key}, which src/config/ora.rs does not accept"
        );
    }
    // The values shown are the defaults: uncommented, they change nothing (STANDBY_SERVER
    // aside, an example list of servers).
    let parse = |text: &str| {
        okv_core::config::parse_okvclient_ora(std::path::Path::new(path), text.as_bytes())
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let uncommented: String = example
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with("KEYRING_OKV_") => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        parse(&example).options,
        parse(&uncommented).options,
        "{path}: a commented value is not the default"
    );
    assert_eq!(
        parse(&example).options,
        okv_core::config::Options::default(),
        "{path}: as shipped, the example is not on the defaults"
    );
    assert!(
        flat(&read("docs/packages.md")).contains("`okvclient.ora` with every key commented"),
        "docs/packages.md describes the example"
    );
}

/// `CONFIRM_EVERY` of the sealed key cache's keeper, in minutes.
fn confirm_every_minutes() -> u64 {
    let source = read("src/sealed/keeper.rs");
    let line = source
        .lines()
        .find(|l| l.starts_with("const CONFIRM_EVERY"))
        .expect("src/sealed/keeper.rs has CONFIRM_EVERY");
    let secs: u64 = line
        .split("from_secs(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .expect("CONFIRM_EVERY is Duration::from_secs(N)");
    assert_eq!(secs % 60, 0, "CONFIRM_EVERY in whole minutes");
    secs / 60
}

#[test]
fn a_revoked_key_leaves_the_sealed_cache_at_the_next_confirmation() {
    let minutes = confirm_every_minutes();
    let readme = flat(&read("README.md"));
    let revocation = readme
        .split("**Revocation.**")
        .nth(1)
        .and_then(|rest| rest.split(" - **").next())
        .expect("README.md has the sealed key cache's Revocation point");
    assert!(
        revocation.contains(&format!("every {minutes} minutes"))
            && revocation.contains(&format!("up to {minutes} minutes later")),
        "README.md's Revocation point does not say that a revoked key goes at the next \
         confirmation, every {minutes} minutes (src/sealed/keeper.rs CONFIRM_EVERY): {revocation}"
    );
    assert!(
        flat(&read("docs/security.md")).contains(&format!("every {minutes} minutes")),
        "docs/security.md does not give the confirmation interval ({minutes} minutes)"
    );
    for file in ["README.md", "docs/security.md", "docs/operations.md"] {
        let text = flat(&read(file));
        for claim in ["dropped at once", "drops at once"] {
            assert!(
                !text.contains(claim),
                "{file} says {claim:?}: revoked keys go at the next confirmation, every \
                 {minutes} minutes"
            );
        }
    }
}

/// The alert names of a Prometheus rules file.
fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(|n| n.trim().to_string())
        .collect()
}

#[test]
fn every_alert_rule_is_documented_and_tested() {
    let rules = read("packaging/prometheus/keyring-okv-alerts.yml");
    let tests = read("packaging/prometheus/keyring-okv-alerts.test.yml");
    let operations = read("docs/operations.md");
    let table = operations
        .split("## What to alert on")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/operations.md has 'What to alert on'");
    let names = alert_names(&rules);
    assert!(names.len() >= 10, "alerts not read: {names:?}");
    for name in &names {
        assert!(
            table.contains(&format!("`{name}`")),
            "docs/operations.md's alert table does not list {name}"
        );
        // A firing case: its alertname followed by an expected alert.
        let fires = tests.split("alertname: ").skip(1).any(|case| {
            case.starts_with(&format!("{name}\n"))
                && case
                    .lines()
                    .nth(1)
                    .is_some_and(|l| l.trim() == "exp_alerts:")
        });
        assert!(
            fires,
            "keyring-okv-alerts.test.yml has no case in which {name} fires"
        );
    }
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        for name in line
            .split('|')
            .nth(1)
            .unwrap()
            .split('`')
            .skip(1)
            .step_by(2)
        {
            assert!(
                names.iter().any(|n| n == name),
                "docs/operations.md lists {name}, which keyring-okv-alerts.yml does not have"
            );
        }
    }
}

/// The asset destinations of a `[package.metadata.deb…]` section (its `assets` and
/// `merge-assets.append`), one per asset line.
fn asset_destinations(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("[\"") || l.starts_with("{ dest"))
        .filter_map(|l| {
            if let Some(rest) = l.strip_prefix("{ dest = \"") {
                return rest.split('"').next().map(str::to_string);
            }
            l.split('"').nth(3).map(str::to_string)
        })
        .collect()
}

#[test]
fn each_host_gets_its_own_product_and_the_manual_once() {
    let manifest = read("Cargo.toml");
    let section = |name: &str| {
        let header = if name.is_empty() {
            "[package.metadata.deb]".to_string()
        } else {
            format!("[package.metadata.deb.variants.{name}]")
        };
        let lines = manifest_section(&manifest, &header);
        assert!(!lines.is_empty(), "Cargo.toml has no {header}");
        lines
    };
    // The MySQL package as built: the base section with the "component" variant's merge.
    let mut mysql = asset_destinations(&section(""));
    mysql.extend(asset_destinations(&section("component")));
    let packages = [
        ("keyring-okv", mysql, "tools"),
        (
            "keyring-okv-fips",
            asset_destinations(&section("fips")),
            "tools-fips",
        ),
        (
            "mariadb-plugin-kmip-key-management",
            asset_destinations(&section("mariadb")),
            "tools",
        ),
        (
            "mariadb-plugin-kmip-key-management-fips",
            asset_destinations(&section("mariadb-fips")),
            "tools-fips",
        ),
    ];
    for (package, assets, tools_variant) in &packages {
        let tools_lines = section(tools_variant);
        let tools_name = manifest_value(&tools_lines, "name").unwrap();
        let tools = asset_destinations(&tools_lines);
        assert!(
            !assets
                .iter()
                .any(|d| d.contains("/html/") || d.starts_with("usr/bin")),
            "{package}: the manual and the admin tool belong to {tools_name} only: {assets:?}"
        );
        assert!(
            tools.iter().any(|d| d.contains("/html/")) && tools.iter().any(|d| d == "usr/bin/"),
            "{tools_name} holds the admin tool and the manual"
        );
        assert!(
            !tools.iter().any(|d| d.starts_with("usr/lib/mysql")),
            "{tools_name} holds a server library: {tools:?}"
        );
        // Nothing of the package at the name a DBA writes in the plugin directory.
        assert!(
            !assets
                .iter()
                .any(|d| d.starts_with("usr/lib/mysql/plugin/") && d.ends_with(".cnf")),
            "{package} puts a .cnf in the plugin directory: {assets:?}"
        );
        if package.starts_with("mariadb") {
            assert!(
                !assets.iter().any(|d| d.contains("keyring_okv")),
                "{package} brings MySQL's libraries: {assets:?}"
            );
        }
    }
    // Who brings the tools, as docs/packages.md's table says.
    let relations = [
        ("", "depends", "keyring-okv-tools"),
        ("fips", "depends", "keyring-okv-tools-fips"),
        ("mariadb", "recommends", "keyring-okv-tools"),
        ("mariadb-fips", "recommends", "keyring-okv-tools-fips"),
    ];
    for (variant, key, tools) in relations {
        let value = manifest_value(&section(variant), key).unwrap_or_default();
        assert!(
            value.split(',').any(|d| d.trim() == tools),
            "Cargo.toml's {variant:?} package: {key} does not name {tools}: {value:?}"
        );
    }
    let docs = flat(&read("docs/packages.md"));
    for row in [
        "`Depends: keyring-okv-tools`",
        "`Recommends: keyring-okv-tools`",
    ] {
        assert!(docs.contains(row), "docs/packages.md does not say {row}");
    }
}

#[test]
fn the_component_reads_the_conffile_the_package_ships() {
    let manifest = read("Cargo.toml");
    let system = okv_core::products::mysql_component::settings::SYSTEM_FILE;
    for variant in ["component", "fips"] {
        let assets = asset_destinations(&manifest_section(
            &manifest,
            &format!("[package.metadata.deb.variants.{variant}]"),
        ));
        assert!(
            assets.iter().any(|d| format!("/{d}") == system),
            "the {variant} package does not ship {system}, which the component reads: {assets:?}"
        );
    }
    for doc in ["docs/packages.md", "docs/component.md", "README.md"] {
        assert!(
            read(doc).contains(system),
            "{doc} does not say that the DBA writes the component's configuration in {system}"
        );
    }
}
