//! The key file: created private, reused, refused when others can read it or malformed.

use std::fs;

use webriskops_ports::PortError;
use webriskops_sealing::MasterKey;

#[test]
fn key_file_is_created_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("master.key");
    let created = MasterKey::load_or_create(&path).unwrap();
    let again = MasterKey::load_or_create(&path).unwrap();
    assert_eq!(created, again);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(MasterKey::from_env_value(&text).unwrap(), created);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let leftovers = fs::read_dir(path.parent().unwrap()).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary file is left behind");
}

#[cfg(unix)]
#[test]
fn a_key_file_readable_by_others_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    MasterKey::load_or_create(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

    let err = MasterKey::load_or_create(&path).unwrap_err();
    assert!(matches!(err, PortError::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("mode 644"), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("chmod 600 {}", path.display())),
        "{err}"
    );

    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(MasterKey::load_or_create(&path).is_ok());
}

#[test]
fn a_malformed_key_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    fs::write(&path, "too short\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let err = MasterKey::load_or_create(&path).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}
