//! The real `lobstah` binary, driven with LOBSTAH_HOME set to a temporary directory:
//! identity commands, and the ledger commands on receipts signed here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lobstah::core::ledger::BALANCES;
use lobstah::core::protocol::{Identity, PublicKey, Receipt, SignedReceipt};
use redb::ReadableTable;
use serde_json::{Value, json};

fn lobstah(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lobstah"))
        .env("LOBSTAH_HOME", home)
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .expect("run the lobstah binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Runs and requires success, returning stdout.
fn ok(home: &Path, args: &[&str]) -> String {
    let o = lobstah(home, args);
    assert!(
        o.status.success(),
        "lobstah {args:?} failed ({}): {}",
        o.status,
        stderr(&o)
    );
    stdout(&o)
}

/// Runs and requires exit status 1 (an error, not a crash), returning stderr.
fn fails(home: &Path, args: &[&str]) -> String {
    let o = lobstah(home, args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "lobstah {args:?} should fail: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn identity_file(home: &Path) -> PathBuf {
    home.join("identity.json")
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
fn identity_commands() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();

    let err = fails(home, &["id"]);
    assert!(err.contains("lobstah keygen"), "{err}");

    let out = ok(home, &["keygen"]);
    let pubkey = out.trim().to_string();
    assert!(
        pubkey.starts_with("lob1") && pubkey.len() == 68,
        "keygen printed {out:?}"
    );
    PublicKey::parse(&pubkey).unwrap();
    let file = identity_file(home);
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    let saved: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["version"], json!(1));
    assert_eq!(saved["publicKey"], json!(pubkey));
    let seed = saved["secretKey"].as_str().unwrap();
    assert_eq!(
        Identity::from_seed_hex(seed).unwrap().public().to_string(),
        pubkey
    );

    let err = fails(home, &["keygen"]);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        ok(home, &["id"]).trim(),
        pubkey,
        "a refused keygen changed the key"
    );

    #[cfg(unix)]
    {
        set_mode(&file, 0o644);
        let err = fails(home, &["id"]);
        assert!(err.contains("chmod 600"), "{err}");
        set_mode(&file, 0o600);
        assert_eq!(ok(home, &["id"]).trim(), pubkey);
    }

    let replaced = ok(home, &["keygen", "--force"]).trim().to_string();
    assert_ne!(replaced, pubkey);
    assert_eq!(ok(home, &["id"]).trim(), replaced);

    // Malformed identity files: an error naming the file and the problem.
    let cases = [
        ("{not json", "not the expected JSON"),
        (
            r#"{"version":1,"publicKey":"lob1zz","secretKey":"00"}"#,
            "secret key",
        ),
        (
            r#"{"version":7,"publicKey":"","secretKey":""}"#,
            "version 7",
        ),
    ];
    for (text, needle) in cases {
        fs::write(&file, text).unwrap();
        #[cfg(unix)]
        set_mode(&file, 0o600);
        let err = fails(home, &["id"]);
        assert!(err.contains("is not valid"), "{text}: {err}");
        assert!(err.contains(needle), "{text}: {err}");
        assert!(err.contains(&file.display().to_string()), "{text}: {err}");
    }
}

/// Signs a receipt between two identities (the worker signs).
fn receipt(
    worker: &Identity,
    requester: &Identity,
    n: u64,
    input: u64,
    output: u64,
    unknown: bool,
) -> SignedReceipt {
    let r = Receipt {
        version: 1,
        job_id: format!("cli-job-{n}"),
        nonce: format!("{:032x}", 0xc11_0000 + n),
        requester_pubkey: requester.public(),
        worker_pubkey: worker.public(),
        model: if unknown {
            "llama\"3\"\\ ünï 🦞\n\u{7}".into()
        } else {
            "llama3.1:8b".into()
        },
        input_tokens: input,
        output_tokens: output,
        started_at: 1_700_000_000_000 + n * 10_000,
        completed_at: 1_700_000_000_000 + n * 10_000 + 4_000,
    };
    if unknown {
        let Value::Object(mut body) = serde_json::to_value(&r).unwrap() else {
            unreachable!()
        };
        body.insert("x_future".into(), json!({"a": [1, "é"]}));
        SignedReceipt::sign_body(body, worker).unwrap()
    } else {
        SignedReceipt::sign(r, worker).unwrap()
    }
}

fn balance_json(home: &Path) -> Value {
    serde_json::from_str(&ok(home, &["balance", "--json"])).unwrap()
}

fn all_balances(home: &Path) -> Value {
    serde_json::from_str(&ok(home, &["balance", "--all", "--json"])).unwrap()
}

#[test]
fn ledger_commands() {
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path();
    let pubkey = ok(home, &["keygen"]).trim().to_string();

    // A fresh node: no database yet, the whole allowance available.
    let fresh = balance_json(home);
    assert_eq!(fresh["pubkey"], json!(pubkey));
    assert_eq!(fresh["available"], json!(10_000));
    assert_eq!(fresh["earned"], json!(0));
    assert_eq!(fresh["spent"], json!(0));

    let saved: Value = serde_json::from_slice(&fs::read(identity_file(home)).unwrap()).unwrap();
    let me = Identity::from_seed_hex(saved["secretKey"].as_str().unwrap()).unwrap();
    let a = Identity::from_seed([0xa1; 32]);
    let b = Identity::from_seed([0xb2; 32]);

    let valid = [
        receipt(&me, &a, 1, 100, 50, false), // earned 150
        receipt(&a, &me, 2, 30, 20, false),  // spent 50
        receipt(&b, &a, 3, 7, 3, false),     // neither side is me
        receipt(&me, &me, 4, 5, 5, false),   // self: earned 10 and spent 10
        receipt(&a, &me, 5, 200, 0, true),   // spent 200; unknown field, tricky model
        receipt(&me, &b, 6, 1, 2, false),    // earned 3
    ];
    let mut bad_sig = receipt(&b, &me, 7, 1, 1, false).to_value();
    let sig = bad_sig["signature"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if &sig[..1] == "0" { "1" } else { "0" }, &sig[1..]);
    bad_sig["signature"] = json!(flipped);

    let lines = [
        valid[0].to_json(),                  // 1
        valid[1].to_json(),                  // 2
        String::new(),                       // 3: blank, skipped
        valid[2].to_json(),                  // 4
        valid[1].to_json(),                  // 5: duplicate of line 2
        "this is not json".into(),           // 6: invalid
        valid[3].to_json(),                  // 7
        bad_sig.to_string(),                 // 8: invalid signature
        valid[4].to_json(),                  // 9
        format!("  {}", valid[5].to_json()), // 10
    ];
    let file = home.join("import.jsonl");
    fs::write(&file, lines.join("\n") + "\n").unwrap();
    let file_arg = file.to_str().unwrap();

    let o = lobstah(home, &["ledger", "import", file_arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("imported 6, duplicate 1, invalid 2"),
        "{}",
        stdout(&o)
    );
    let err = stderr(&o);
    let problem_lines: Vec<&str> = err.lines().filter(|l| l.starts_with(file_arg)).collect();
    assert_eq!(problem_lines.len(), 2, "{err}");
    assert!(
        problem_lines[0].starts_with(&format!("{file_arg}:6:")),
        "{err}"
    );
    assert!(problem_lines[0].contains("invalid JSON"), "{err}");
    assert!(
        problem_lines[1].starts_with(&format!("{file_arg}:8:")),
        "{err}"
    );
    assert!(problem_lines[1].contains("bad-signature"), "{err}");

    let mine = balance_json(home);
    assert_eq!(mine["earned"], json!(150 + 10 + 3));
    assert_eq!(mine["spent"], json!(50 + 10 + 200));
    assert_eq!(mine["net"], json!(163 - 260));
    assert_eq!(mine["available"], json!(10_000 + 163 - 260));
    assert_eq!(mine["receipts"], json!(5));
    let balances = all_balances(home);
    assert_eq!(balances.as_array().unwrap().len(), 3);

    // The same file again: everything valid is a duplicate now, nothing changes.
    let again = ok(home, &["ledger", "import", file_arg]);
    assert!(
        again.contains("imported 0, duplicate 7, invalid 2"),
        "{again}"
    );
    assert_eq!(all_balances(home), balances);

    // Export gives back the receipts as received, oldest first, unknown fields kept.
    let exported = ok(home, &["ledger", "export"]);
    let back: Vec<SignedReceipt> = exported
        .lines()
        .map(|l| SignedReceipt::from_json(l.as_bytes()).unwrap())
        .collect();
    assert_eq!(back, valid.to_vec());
    for r in &back {
        r.verify_signature().unwrap();
    }
    assert_eq!(back[4].body()["x_future"], json!({"a": [1, "é"]}));

    let verified = ok(home, &["ledger", "verify"]);
    assert!(verified.contains("checked 6 receipts"), "{verified}");
    assert!(verified.contains("ledger ok"), "{verified}");

    // The two newest, newest first.
    let newest: Value =
        serde_json::from_str(&ok(home, &["receipts", "--limit", "2", "--json"])).unwrap();
    let newest = newest.as_array().unwrap();
    assert_eq!(newest.len(), 2);
    assert_eq!(newest[0]["seq"], json!(6));
    assert_eq!(newest[1]["seq"], json!(5));
    let parse = |v: &Value| SignedReceipt::from_value(v["signedReceipt"].clone()).unwrap();
    assert_eq!(parse(&newest[0]), valid[5]);
    assert_eq!(parse(&newest[1]), valid[4]);

    // Corrupt the stored aggregate for A behind the ledger's back: verify must say so.
    let a_key = a.public().to_string();
    {
        let db = redb::Database::open(home.join("lobstah.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut table = tx.open_table(BALANCES).unwrap();
            let (earned, spent, count) = table.get(a_key.as_str()).unwrap().unwrap().value();
            table
                .insert(a_key.as_str(), (earned + 1, spent, count))
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let o = lobstah(home, &["ledger", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let report = stdout(&o);
    let mismatch: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("MISMATCH"))
        .collect();
    assert_eq!(mismatch.len(), 1, "{report}");
    assert!(mismatch[0].contains(&a_key), "{report}");
    assert!(!report.contains("ledger ok"), "{report}");

    let o = lobstah(home, &["ledger", "verify", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["mismatches"].as_array().unwrap().len(), 1);
}

#[test]
fn import_counts_a_non_utf8_line_as_invalid_and_goes_on() {
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path();
    let a = Identity::from_seed([0xa1; 32]);
    let b = Identity::from_seed([0xb2; 32]);
    let first = receipt(&a, &b, 1, 10, 20, false);
    let second = receipt(&b, &a, 2, 30, 40, true);
    let mut bytes = first.to_json().into_bytes();
    bytes.extend_from_slice(b"\r\n\xff\xfe not utf-8 \xc3\r\n");
    bytes.extend_from_slice(second.to_json().as_bytes());
    bytes.extend_from_slice(b"\r\n\r\n");
    let file = home.join("mixed.jsonl");
    fs::write(&file, bytes).unwrap();
    let file_arg = file.to_str().unwrap();

    let o = lobstah(home, &["ledger", "import", file_arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("imported 2, duplicate 0, invalid 1"),
        "{}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert!(err.contains(&format!("{file_arg}:2:")), "{err}");
    let exported: Vec<SignedReceipt> = ok(home, &["ledger", "export"])
        .lines()
        .map(|l| SignedReceipt::from_json(l.as_bytes()).unwrap())
        .collect();
    assert_eq!(exported, vec![first, second]);
}

/// A 0-byte ledger is refused by every command that opens it, naming the file and what
/// to do, and left as it was: the receipts it should hold are not silently started over.
#[test]
fn an_empty_ledger_file_is_refused_not_taken_as_new() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["keygen"]);
    let db = dir.path().join("lobstah.redb");
    fs::write(&db, b"").unwrap();
    for args in [
        &["ledger", "verify"][..],
        &["balance"][..],
        &["worker", "start", "--engine", "synthetic", "--port", "0"][..],
    ] {
        let o = lobstah(dir.path(), args);
        assert!(
            !o.status.success(),
            "lobstah {args:?} refuses an empty ledger"
        );
        let err = stderr(&o);
        assert!(
            err.contains(&db.display().to_string()) && err.contains("empty (0 bytes)"),
            "lobstah {args:?} names the file and says why: {err}"
        );
        assert!(err.contains("move it away"), "says what to do: {err}");
    }
    assert_eq!(
        fs::metadata(&db).unwrap().len(),
        0,
        "the file is left alone"
    );
}

/// A new ledger file is private to its owner, like the identity.
#[cfg(unix)]
#[test]
fn a_new_ledger_is_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    Command::new(env!("CARGO_BIN_EXE_lobstah"))
        .env("LOBSTAH_HOME", &home)
        .args(["keygen"])
        .output()
        .unwrap();
    ok(
        &home,
        &[
            "peers",
            "add",
            &Identity::from_seed([7; 32]).public().to_string(),
            "http://127.0.0.1:1",
        ],
    );
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home.join("lobstah.redb")), 0o600);
}
