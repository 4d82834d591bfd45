//! Writes the man pages of the `keyring-okv` admin tool from its own clap definitions:
//! `keyring-okv.1` (options, the command list, exit status, environment, files) and one
//! `keyring-okv-COMMAND.1` per command. `scripts/deb.sh` runs it when building the package:
//!
//!     cargo run --example keyring-okv-man -- OUT_DIR
//!
//! The tool's source is compiled in as a module, so the pages always match the binary.

#[path = "../src/bin/keyring-okv.rs"]
#[allow(dead_code)]
mod cli;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap_mangen::Man;

/// Sections the clap definitions do not hold.
const ENVIRONMENT: &str = r#".SH ENVIRONMENT
.TP
\fBKEYRING_OKV_CONF_DIR\fR
The configuration directory, when \fB\-\-conf\-dir\fR is not given.
"#;

const FILES: &str = r#".SH FILES
.TP
\fIDIR\fR\fB/okvclient.ora\fR
\fBSERVER=\fR\fIhost:port\fR and up to 64 \fBSTANDBY_SERVER=\fR entries, as for the plugin.
.TP
\fIDIR\fR\fB/ssl/CA.pem\fR, \fBcert.pem\fR, \fBkey.pem\fR, \fBpassword.txt\fR
The CA certificate of the KMIP server, the client certificate and key, and the optional
password of an encrypted key.
.TP
\fIDIR\fR\fB/keyring_okv.sealed\fR, \fBcomponent_keyring_okv.sealed\fR, \fBkmip_key_management.sealed\fR
The sealed key caches of the MySQL plugin, the MySQL component and the MariaDB plugin, when
their setting turns them on: encrypted under a key derived from \fBssl/key.pem\fR, mode 0600
(\fBsealed\-cache show\fR, \fBsealed\-cache remove\fR).
.TP
\fB/usr/share/doc/keyring\-okv/examples/mysql\-keyring\-okv/\fR
An example configuration directory.
"#;

fn see_also(commands: &[String]) -> String {
    let mut refs: Vec<String> = commands
        .iter()
        .map(|c| format!("\\fBkeyring\\-okv\\-{}\\fR(1)", c.replace('-', "\\-")))
        .collect();
    refs.push("\\fBmysqld\\fR(8)".to_string());
    format!(
        ".SH SEE ALSO\n{}\n.PP\n/usr/share/doc/keyring\\-okv/README.md\n",
        refs.join(",\n")
    )
}

fn main() -> ExitCode {
    let Some(out_dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: keyring-okv-man OUT_DIR");
        return ExitCode::from(1);
    };
    match write_pages(&out_dir) {
        Ok(pages) => {
            for page in pages {
                println!("{}", page.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keyring-okv-man: {}: {e}", out_dir.display());
            ExitCode::from(1)
        }
    }
}

fn write_pages(out_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir)?;
    // The plain package version: the build string also names the profile the generator ran in.
    let mut cmd = cli::command()
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_subcommand(true);
    cmd.build();
    let commands: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    let manual = "keyring_okv";
    let mut pages = Vec::new();

    let main_path = out_dir.join("keyring-okv.1");
    let man = Man::new(cmd.clone()).manual(manual);
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    let mut list = Vec::new();
    man.render_subcommands_section(&mut list)?;
    page.extend(retitle(&list, "COMMANDS"));
    page.extend_from_slice(exit_status(&cmd).as_bytes());
    page.extend_from_slice(ENVIRONMENT.as_bytes());
    page.extend_from_slice(FILES.as_bytes());
    page.extend_from_slice(see_also(&commands).as_bytes());
    man.render_version_section(&mut page)?;
    write(&main_path, &page)?;
    pages.push(main_path);

    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // --conf-dir belongs to the top-level command; the synopsis shows where it goes.
        let sub = sub
            .clone()
            .bin_name(format!("keyring-okv --conf-dir DIR {}", sub.get_name()));
        let man = Man::new(sub)
            .manual(manual)
            .source(format!("keyring-okv {}", env!("CARGO_PKG_VERSION")));
        let path = out_dir.join(man.get_filename());
        let mut page = Vec::new();
        man.render(&mut page)?;
        page.extend_from_slice(".SH SEE ALSO\n\\fBkeyring\\-okv\\fR(1)\n".as_bytes());
        write(&path, &page)?;
        pages.push(path);
    }
    Ok(pages)
}

/// The exit codes of the tool's `after_help` ("  N  meaning" lines) as a list.
fn exit_status(cmd: &clap::Command) -> String {
    let help = cmd
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut out = String::from(".SH \"EXIT STATUS\"\n");
    for line in help.lines() {
        let line = line.trim();
        let Some((code, meaning)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        if code.parse::<u8>().is_ok() {
            out.push_str(&format!(
                ".TP\n\\fB{code}\\fR\n{}\n",
                roff_text(meaning.trim())
            ));
        }
    }
    out
}

/// Escapes text for a roff line: hyphens, backslashes, and a leading dot or quote.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Replaces the first `.SH` heading of a rendered section.
fn retitle(section: &[u8], title: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(section);
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        if !done && line.starts_with(".SH") {
            out.push_str(&format!(".SH \"{title}\"\n"));
            done = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.into_bytes()
}

fn write(path: &Path, page: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(page)?;
    file.flush()
}
