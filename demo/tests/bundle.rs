//! Building the demo bundle from the host's binaries (no root needed).

mod support;

use std::{fs, process::Command};

use oci_spec::runtime::Spec;
use profgen_demo::{build_bundle, seccomp, BundleError, BundleOptions};

#[test]
fn builds_a_runnable_root_filesystem_and_config() {
    if !support::require(support::bundle_prerequisites()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut opts = BundleOptions::new(18080);
    opts.cgroups_path = Some("/profgen/demo-test".into());
    opts.seccomp = Some(seccomp::recording());
    let bundle = build_bundle(dir.path(), &opts).unwrap();

    assert_eq!(bundle.url(), "http://127.0.0.1:18080");
    let spec = Spec::load(&bundle.config).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(std::path::Path::new("/profgen/demo-test"))
    );
    assert_eq!(linux.seccomp().as_ref(), Some(&seccomp::recording()));

    let root = &bundle.rootfs;
    for path in [
        "usr/sbin/nginx",
        "etc/nginx/mime.types",
        "etc/passwd",
        "srv/site/index.html",
        "srv/site/assets/favicon.png",
        "probe",
    ] {
        assert!(root.join(path).is_file(), "{path} missing");
    }
    let conf = fs::read_to_string(root.join("etc/nginx/nginx.conf")).unwrap();
    assert!(conf.contains("listen 127.0.0.1:18080;"));

    // nginx accepts its configuration with exactly what is in the root filesystem (chroot
    // needs root; the container tests cover the rest).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let out = Command::new("chroot")
            .arg(root)
            .args([
                "/usr/sbin/nginx",
                "-t",
                "-c",
                "/etc/nginx/nginx.conf",
                "-e",
                "stderr",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.contains("syntax is ok"),
            "{stderr}"
        );
    }

    // The probe runs on the host, where nothing refuses unshare(0).
    let out = Command::new(root.join("probe"))
        .args(["unshare", "personality"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "unshare ok\npersonality ok\n"
    );
    let unknown = Command::new(root.join("probe"))
        .arg("nosuch")
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));

    // A second build into the same directory refuses to overwrite it.
    assert!(matches!(
        build_bundle(dir.path(), &opts),
        Err(BundleError::Exists(_))
    ));
}
