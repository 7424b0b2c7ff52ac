//! `lobstah keygen` and the Nostr key beside the identity, through the real binary with
//! LOBSTAH_HOME in a temporary directory: both files 0600, `--force` replaces both, an
//! identity from before Nostr gets the key it lacks, an unsafe key file is refused.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use nostr_sdk::prelude::Keys;

fn lobstah(home: &Path, args: &[&str]) -> Output {
    support::bin::lobstah(home)
        .args(args)
        .output()
        .expect("run the lobstah binary")
}

fn ok(home: &Path, args: &[&str]) -> String {
    let out = lobstah(home, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lobstah {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn fails(home: &Path, args: &[&str]) -> String {
    let out = lobstah(home, args);
    assert!(!out.status.success(), "lobstah {args:?} succeeded");
    String::from_utf8(out.stderr).expect("utf-8 stderr")
}

fn files(home: &Path) -> (PathBuf, PathBuf) {
    (home.join("identity.json"), home.join("nostr.key"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).expect("read key file")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn keygen_creates_both_keys_and_force_replaces_both() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (identity, nostr) = files(home);

    let out = ok(home, &["keygen"]);
    assert_eq!(
        out.lines().count(),
        1,
        "stdout is the lobstah key only: {out:?}"
    );
    let pubkey = out.trim().to_owned();
    assert!(pubkey.starts_with("lob1"), "{out:?}");
    #[cfg(unix)]
    assert_eq!((mode(&identity), mode(&nostr)), (0o600, 0o600));
    let secret = read(&nostr);
    assert_eq!(secret.trim().len(), 64, "a hex secret: {secret:?}");
    Keys::parse(secret.trim()).expect("a valid secp256k1 secret");

    // Without --force nothing changes.
    let err = fails(home, &["keygen"]);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(ok(home, &["id"]).trim(), pubkey);
    assert_eq!(read(&nostr), secret);

    let replaced = ok(home, &["keygen", "--force"]).trim().to_owned();
    assert_ne!(replaced, pubkey);
    assert_ne!(read(&nostr), secret);
    #[cfg(unix)]
    assert_eq!((mode(&identity), mode(&nostr)), (0o600, 0o600));
    assert!(
        !home.join("nostr.key.tmp").exists() && !home.join("identity.json.tmp").exists(),
        "a temporary file was left behind"
    );
}

#[test]
fn an_identity_without_a_nostr_key_gets_one_and_keeps_its_key() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (identity, nostr) = files(home);
    let pubkey = ok(home, &["keygen"]).trim().to_owned();
    let identity_text = read(&identity);

    // As a node set up before lobstah spoke Nostr.
    fs::remove_file(&nostr).unwrap();
    let out = lobstah(home, &["keygen"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pubkey);
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept the identity"));
    assert_eq!(read(&identity), identity_text);
    #[cfg(unix)]
    assert_eq!(mode(&nostr), 0o600);
    Keys::parse(read(&nostr).trim()).expect("a valid secret");

    // And the other way round: a Nostr key alone is kept, the identity created.
    let secret = read(&nostr);
    fs::remove_file(&identity).unwrap();
    let created = ok(home, &["keygen"]).trim().to_owned();
    assert_ne!(created, pubkey);
    assert_eq!(read(&nostr), secret);
}

#[cfg(unix)]
#[test]
fn a_nostr_key_others_can_read_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (identity, nostr) = files(home);
    ok(home, &["keygen"]);
    let secret = read(&nostr);
    fs::remove_file(&identity).unwrap();
    set_mode(&nostr, 0o644);

    let err = fails(home, &["keygen"]);
    assert!(
        err.contains("Nostr key file") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(
        !identity.exists(),
        "keygen wrote an identity before refusing"
    );
    assert_eq!(read(&nostr), secret);

    // --force replaces it with a private one.
    ok(home, &["keygen", "--force"]);
    assert_eq!(mode(&nostr), 0o600);
    assert_ne!(read(&nostr), secret);
}

#[test]
fn id_prints_the_npub_only_when_asked() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let pubkey = ok(home, &["keygen"]).trim().to_owned();
    assert_eq!(ok(home, &["id"]), format!("{pubkey}\n"));

    let out = ok(home, &["id", "--nostr"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert_eq!(lines[0], pubkey);
    let keys = Keys::parse(read(&files(home).1).trim()).unwrap();
    use nostr_sdk::prelude::ToBech32;
    assert_eq!(lines[1], keys.public_key().to_bech32().unwrap());
    assert!(lines[1].starts_with("npub1"), "{out:?}");

    fs::remove_file(files(home).1).unwrap();
    let err = fails(home, &["id", "--nostr"]);
    assert!(err.contains("lobstah keygen"), "{err}");
    assert_eq!(ok(home, &["id"]).trim(), pubkey);
}
