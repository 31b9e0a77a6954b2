//! The comment listing what failed while recording. Failed accesses are never allowed; they
//! are listed so a reviewer sees what the workload tried and did without.
//!
//! The dynamic loader's search for a library through CPU-specific directories
//! (`glibc-hwcaps/x86-64-v3/`, `tls/`, `x86_64/`, `haswell/`, …) depends on the machine that
//! recorded, not on the workload: those failures become one line per library, so the same
//! workload gives the same profile on another CPU.

use std::collections::BTreeSet;

use super::escape;

/// Library directories the loader searches (Debian's multiarch and the classic ones).
const LIB_DIRS: &[&str] = &[
    "/lib/",
    "/lib64/",
    "/usr/lib/",
    "/usr/lib64/",
    "/usr/local/lib/",
    "/lib/x86_64-linux-gnu/",
    "/usr/lib/x86_64-linux-gnu/",
    "/lib/i386-linux-gnu/",
    "/usr/lib/i386-linux-gnu/",
];

/// The comment lines (without indentation or `#`) for `failed`, sorted.
pub(crate) fn comment_lines(failed: &[Vec<u8>]) -> Vec<String> {
    let mut libraries = BTreeSet::new();
    let mut lines = Vec::new();
    for path in failed {
        match loader_search(path) {
            Some(lib) => {
                libraries.insert(lib);
            }
            None => lines.push(escape::for_comment(path)),
        }
    }
    if !libraries.is_empty() {
        let names: Vec<String> = libraries.iter().map(|l| escape::for_comment(l)).collect();
        lines.push(format!(
            "the dynamic loader's search of CPU-specific library directories for {} (machine-dependent, not listed)",
            names.join(", ")
        ));
    }
    lines
}

/// The library's file name when `path` is a shared library below one of [`LIB_DIRS`], in a
/// subdirectory (a search path of the loader, not where the library lives).
fn loader_search(path: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(path).ok()?;
    let (dir, file) = text.rsplit_once('/')?;
    let is_library = file.contains(".so") && file.starts_with("lib");
    let dir = format!("{dir}/");
    let below_lib_dir = !LIB_DIRS.contains(&dir.as_str())
        && LIB_DIRS
            .iter()
            .any(|lib| dir.len() > lib.len() && dir.starts_with(lib));
    (is_library && below_lib_dir).then(|| file.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(paths: &[&str]) -> Vec<String> {
        let failed: Vec<Vec<u8>> = paths.iter().map(|p| p.as_bytes().to_vec()).collect();
        comment_lines(&failed)
    }

    #[test]
    fn cpu_specific_library_searches_are_one_line() {
        let one_cpu = lines(&[
            "/etc/localtime",
            "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libcrypt.so.1",
            "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v2/libcrypt.so.1",
            "/usr/lib/x86_64-linux-gnu/tls/x86_64/libcrypt.so.1",
            "/usr/lib/x86_64-linux-gnu/haswell/libpcre2-8.so.0",
        ]);
        let other_cpu = lines(&[
            "/etc/localtime",
            "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v4/libcrypt.so.1",
            "/usr/lib/x86_64-linux-gnu/avx512_1/x86_64/libpcre2-8.so.0",
        ]);
        assert_eq!(one_cpu, other_cpu);
        assert_eq!(
            one_cpu,
            [
                "/etc/localtime",
                "the dynamic loader's search of CPU-specific library directories for libcrypt.so.1, libpcre2-8.so.0 (machine-dependent, not listed)"
            ]
        );
    }

    #[test]
    fn other_failures_stay_listed() {
        let paths = [
            // The library itself missing from its directory is the workload's, not the CPU's.
            "/usr/lib/x86_64-linux-gnu/libmissing.so.3",
            "/usr/lib/ssl/openssl.cnf",
            "/srv/app/lib/plugin.so",
        ];
        assert_eq!(lines(&paths), paths);
    }
}
