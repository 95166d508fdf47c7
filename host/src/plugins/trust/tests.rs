use super::*;

/// The development key of this repository (deploy/dev), and its public half.
const DEV_SECRET: &str = include_str!("../../../../deploy/dev/dev-plugin-signing.key");
const DEV_PUBLIC: &str = "RWQ3ZmYhiJM6RrBNAalO6YgB+GZ/X9xab+/2qU4jVDHtCi6uCUmaxNJQ";

/// A key and a signature made by Debian's minisign 0.11 (`minisign -G -W`, then `minisign
/// -S -t "plugin=mock version=2.1.0"` over "hello\n"): what authors sign with.
const MINISIGN_PUBLIC: &str = "RWTZdvyqsVekesosRZyCnd6G8MCvkQdiIIbO5Ruypq36e64FA9AyG5oT";
const MINISIGN_SIGNATURE: &str = "untrusted comment: signature from minisign secret key
RUTZdvyqsVekepfgJ+Vf5CJ7tZthzaXEbifBC/z63Z7aKi2ImsXlowcPPN9DAf/8FtjV4Ewr3/4od8H+bMSN30MbeUzmkK4zEww=
trusted comment: plugin=mock version=2.1.0
htVTy7PNNuKJkpg1rfsBbWN3uO2AIZFXNSVxf6YkJob6Zam1TTe+XAUbwJvrgga4yAxmqdiPHUGy17VFRCP0BA==
";

fn manifest(name: &str, version: &str) -> Manifest {
    Manifest::new(name, version)
}

/// A library file and its signature in a scratch folder.
fn library(dir: &Path, bytes: &[u8], signature: Option<&str>) -> PathBuf {
    let file = dir.join("libx.so");
    std::fs::write(&file, bytes).unwrap();
    if let Some(s) = signature {
        std::fs::write(signature_file(&file), s).unwrap();
    }
    file
}

fn policy(keys: &[(&str, &str)], require: bool, lock: Option<&Path>) -> Policy {
    Policy {
        keys: keys
            .iter()
            .map(|(n, k)| TrustedKey::parse(n, k).unwrap())
            .collect(),
        require_signature: require,
        lock_file: lock.map(Path::to_owned),
    }
}

#[test]
fn a_signature_made_by_minisign_verifies_and_names_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let file = library(dir.path(), b"hello\n", Some(MINISIGN_SIGNATURE));
    let p = policy(&[("author", MINISIGN_PUBLIC)], true, None);
    let t = p.judge(&file, b"hello\n").unwrap();
    assert_eq!(t.status(), "signed (author)");
    p.confirm(&t, &manifest("mock", "2.1.0")).unwrap();
    let other = p.confirm(&t, &manifest("mock", "2.1.1")).unwrap_err();
    assert_eq!(other.kind, "invalid signature", "{other:?}");
    assert!(
        other.message.contains("plugin=mock version=2.1.1"),
        "{other:?}"
    );
    let wrong = p.confirm(&t, &manifest("stripe", "2.1.0")).unwrap_err();
    assert_eq!(wrong.kind, "invalid signature");
}

#[test]
fn what_payhost_signs_minisign_verifies_with_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = b"\x7fELF a plugin";
    let sig = sign(DEV_SECRET, bytes, "plugin=mock version=2.1.0").unwrap();
    let file = library(dir.path(), bytes, Some(&sig));
    // Rotation: either of two trusted keys may have signed it.
    let p = policy(
        &[("old", MINISIGN_PUBLIC), ("payhost-dev", DEV_PUBLIC)],
        true,
        None,
    );
    let t = p.judge(&file, bytes).unwrap();
    assert_eq!(t.signed_by.as_deref(), Some("payhost-dev"));
    p.confirm(&t, &manifest("mock", "2.1.0")).unwrap();
}

#[test]
fn a_flipped_byte_or_an_untrusted_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = b"\x7fELF a plugin".to_vec();
    let sig = sign(DEV_SECRET, &bytes, "plugin=mock version=2.1.0").unwrap();
    let mut flipped = bytes.clone();
    flipped[5] ^= 1;
    let file = library(dir.path(), &flipped, Some(&sig));
    let p = policy(&[("payhost-dev", DEV_PUBLIC)], false, None);
    let e = p.judge(&file, &flipped).unwrap_err();
    assert_eq!(e.kind, "invalid signature", "{e:?}");
    assert!(e.message.contains("not the one that was signed"), "{e:?}");
    // Signed by a key nobody trusts: refused even where signatures are not required.
    let file = library(dir.path(), &bytes, Some(&sig));
    let p = policy(&[("author", MINISIGN_PUBLIC)], false, None);
    let e = p.judge(&file, &bytes).unwrap_err();
    assert_eq!(e.kind, "invalid signature", "{e:?}");
    assert!(
        e.message.contains("463A938821666637") && e.message.contains("author"),
        "{e:?}"
    );
    // Garbage next to it.
    std::fs::write(signature_file(&file), "not a signature").unwrap();
    assert_eq!(
        p.judge(&file, &bytes).unwrap_err().kind,
        "invalid signature"
    );
}

#[test]
fn unsigned_loads_only_where_signatures_are_not_required() {
    let dir = tempfile::tempdir().unwrap();
    let file = library(dir.path(), b"lib", None);
    let t = policy(&[], false, None).judge(&file, b"lib").unwrap();
    assert_eq!(t.status(), "unsigned");
    let e = policy(&[], true, None).judge(&file, b"lib").unwrap_err();
    assert_eq!(e.kind, "unsigned");
}

#[test]
fn the_lock_takes_its_bytes_and_refuses_others_naming_both_digests() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let lock_file = dir.path().join("plugins.lock");
    let file = library(dir.path(), b"build one", None);
    let lock = Lock {
        allow_signed_updates: false,
        plugins: vec![LockEntry {
            name: "mock".into(),
            version: "2.1.0".into(),
            contract: "2.2.0".into(),
            file: "libx.so".into(),
            sha256: hex::encode(sha2::Sha256::digest(b"build one")),
            signed_by: None,
        }],
    };
    std::fs::write(&lock_file, lock.to_text()).unwrap();
    assert_eq!(
        Lock::read(&lock_file).unwrap(),
        Some(lock.clone()),
        "round trip"
    );
    let p = policy(&[("payhost-dev", DEV_PUBLIC)], false, Some(&lock_file));
    let t = p.judge(&file, b"build one").unwrap();
    assert_eq!(t.status(), "locked");
    p.confirm(&t, &manifest("mock", "2.1.0")).unwrap();
    // The same file, other bytes: modified, naming both digests.
    let e = p.judge(&file, b"build two").unwrap_err();
    assert_eq!(e.kind, "modified", "{e:?}");
    assert!(
        e.message.contains(&lock.plugins[0].sha256)
            && e.message
                .contains(&hex::encode(sha2::Sha256::digest(b"build two"))),
        "{e:?}"
    );
    // Another file, not listed: not locked...
    let other = dir.path().join("libother.so");
    std::fs::write(&other, b"other").unwrap();
    assert_eq!(p.judge(&other, b"other").unwrap_err().kind, "not locked");
    // ...unless the lock allows signed updates and a trusted key signed it.
    let mut open = lock.clone();
    open.allow_signed_updates = true;
    std::fs::write(&lock_file, open.to_text()).unwrap();
    let sig = sign(DEV_SECRET, b"other", "plugin=other version=1.0.0").unwrap();
    std::fs::write(signature_file(&other), sig).unwrap();
    assert_eq!(
        p.judge(&other, b"other").unwrap().status(),
        "signed (payhost-dev)"
    );
    // A lock that does not parse lets nothing new in.
    std::fs::write(&lock_file, "[[plugin]]\nname = 1\n").unwrap();
    assert_eq!(p.judge(&file, b"build one").unwrap_err().kind, "not locked");
}

#[test]
fn an_encrypted_or_foreign_secret_key_is_named() {
    assert!(sign("untrusted comment: x\nnot base64!", b"x", "c").is_err());
    let encrypted = DEV_SECRET.replacen("RWQAAEIy", "RWRTY0Iy", 1);
    let e = sign(&encrypted, b"x", "c").unwrap_err();
    assert!(e.contains("encrypted"), "{e}");
}
