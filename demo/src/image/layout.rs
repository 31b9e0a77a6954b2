//! The OCI image layout (image-spec v1.1): `oci-layout`, `index.json` naming the tag, and
//! content-addressed blobs under `blobs/sha256/` (the config, one layer, the manifest).
//! The JSON documents are pure functions of their inputs; nothing in them is a time.

use std::{
    fs,
    io::{self, Read as _, Write},
    path::{Path, PathBuf},
};

use ring::digest::{Context, SHA256};
use serde_json::{json, Value};

use super::{layer, ImageError};

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation that names a manifest's tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The full name `ctr images import` gives the image (it ignores the bare tag above).
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A content descriptor: what a blob is, its digest (`sha256:…`) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: &'static str,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }

    fn of(media_type: &'static str, bytes: &[u8]) -> Self {
        Self {
            media_type,
            digest: sha256(bytes),
            size: bytes.len() as u64,
        }
    }

    /// `blobs/sha256/<hex>` below a layout.
    pub fn blob(&self, layout: &Path) -> PathBuf {
        let hex = self.digest.trim_start_matches("sha256:");
        layout.join("blobs/sha256").join(hex)
    }
}

/// What the image runs, and the labels it carries.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub labels: Vec<(String, String)>,
}

pub fn sha256(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&SHA256, bytes).as_ref())
}

fn hex(digest: &[u8]) -> String {
    let mut s = String::from("sha256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The image configuration: platform, how to run, and the uncompressed layer's digest.
/// No `created` and no `history`: both would be times, and the digest must not move.
pub fn config_json(run: &RunConfig, diff_id: &str) -> Vec<u8> {
    let labels: serde_json::Map<String, Value> = run
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    let doc = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": run.entrypoint,
            "Env": run.env,
            "WorkingDir": "/",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    serde_json::to_vec(&doc).expect("JSON values serialize")
}

pub fn manifest_json(config: &Descriptor, layer: &Descriptor) -> Vec<u8> {
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config.json(),
        "layers": [layer.json()],
    });
    serde_json::to_vec(&doc).expect("JSON values serialize")
}

/// `index.json`: the one manifest, tagged `tag`, and named `repository:tag` for containerd.
pub fn index_json(manifest: &Descriptor, repository: &str, tag: &str) -> Vec<u8> {
    let mut entry = manifest.json();
    entry["annotations"] = json!({
        CONTAINERD_NAME: format!("{repository}:{tag}"),
        REF_NAME: tag,
    });
    entry["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let doc = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]});
    serde_json::to_vec(&doc).expect("JSON values serialize")
}

/// A layout written by [`write`].
#[derive(Debug, Clone)]
pub struct Written {
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layer: Descriptor,
}

/// Writes the layout of a one-layer image made of `rootfs` into the empty directory `out`.
pub fn write(
    out: &Path,
    rootfs: &Path,
    run: &RunConfig,
    repository: &str,
    tag: &str,
) -> Result<Written, ImageError> {
    let blobs = out.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_at(&blobs))?;
    let entries = layer::entries(rootfs).map_err(io_at(rootfs))?;

    // One pass: tar → hash (diff_id) → gzip → hash (layer digest) → file.
    let partial = blobs.join("layer.partial");
    let file = fs::File::create(&partial).map_err(io_at(&partial))?;
    let uncompressed = Hashing::new(layer::gzip(Hashing::new(file)));
    let (gz, diff_id, _) = layer::write_tar(&entries, uncompressed)
        .map_err(io_at(&partial))?
        .finish();
    let (file, layer_digest, layer_size) = gz.finish().map_err(io_at(&partial))?.finish();
    file.sync_all().map_err(io_at(&partial))?;
    let layer = Descriptor {
        media_type: LAYER_GZIP,
        digest: layer_digest,
        size: layer_size,
    };
    let blob = layer.blob(out);
    fs::rename(&partial, &blob).map_err(io_at(&blob))?;

    let config_bytes = config_json(run, &diff_id);
    let config = Descriptor::of(CONFIG, &config_bytes);
    write_file(&config.blob(out), &config_bytes)?;
    let manifest_bytes = manifest_json(&config, &layer);
    let manifest = Descriptor::of(MANIFEST, &manifest_bytes);
    write_file(&manifest.blob(out), &manifest_bytes)?;
    write_file(
        &out.join("index.json"),
        &index_json(&manifest, repository, tag),
    )?;
    write_file(
        &out.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    Ok(Written {
        manifest,
        config,
        layer,
    })
}

/// What [`unpack`] found: the manifest's digest and the image configuration.
#[derive(Debug, Clone)]
pub struct Unpacked {
    pub manifest_digest: String,
    pub config: Value,
}

/// Unpacks the image tagged `tag` in the layout `layout` into `rootfs`, as a runtime would,
/// checking every blob against its digest on the way.
pub fn unpack(layout: &Path, tag: &str, rootfs: &Path) -> Result<Unpacked, ImageError> {
    let index: Value = parse(&read(&layout.join("index.json"))?, "index.json")?;
    let entry = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"][REF_NAME] == tag)
        .ok_or_else(|| ImageError::Layout(format!("index.json has no manifest tagged {tag}")))?;
    let manifest_digest = str_field(entry, "digest")?;
    let manifest: Value = parse(&blob(layout, &manifest_digest)?, "the manifest")?;
    let config: Value = parse(
        &blob(layout, &str_field(&manifest["config"], "digest")?)?,
        "the config",
    )?;
    fs::create_dir_all(rootfs).map_err(io_at(rootfs))?;
    for l in manifest["layers"].as_array().into_iter().flatten() {
        let bytes = blob(layout, &str_field(l, "digest")?)?;
        let gz = flate2::read::GzDecoder::new(&bytes[..]);
        let mut archive = tar::Archive::new(gz);
        archive.set_preserve_permissions(true);
        archive.unpack(rootfs).map_err(io_at(rootfs))?;
    }
    Ok(Unpacked {
        manifest_digest,
        config,
    })
}

fn str_field(v: &Value, key: &str) -> Result<String, ImageError> {
    v[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ImageError::Layout(format!("descriptor without {key}: {v}")))
}

fn parse(bytes: &[u8], what: &str) -> Result<Value, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Layout(format!("{what}: {e}")))
}

/// A blob's bytes, refused when they do not hash to `digest`.
fn blob(layout: &Path, digest: &str) -> Result<Vec<u8>, ImageError> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| ImageError::Layout(format!("{digest}: only sha256 digests")))?;
    let bytes = read(&layout.join("blobs/sha256").join(hex))?;
    let actual = sha256(&bytes);
    if actual != digest {
        return Err(ImageError::Layout(format!(
            "blob {digest} hashes to {actual}"
        )));
    }
    Ok(bytes)
}

fn read(path: &Path) -> Result<Vec<u8>, ImageError> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_at(path))?;
    Ok(bytes)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    fs::write(path, bytes).map_err(io_at(path))
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Context,
    len: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Context::new(&SHA256),
            len: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        (self.inner, hex(self.hash.finish().as_ref()), self.len)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunConfig {
        RunConfig {
            entrypoint: vec!["/usr/bin/tool".into()],
            env: vec!["PATH=/usr/bin".into()],
            labels: vec![("org.opencontainers.image.version".into(), "1.2.3".into())],
        }
    }

    #[test]
    fn the_documents_chain_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        fs::create_dir_all(rootfs.join("usr/bin")).unwrap();
        fs::write(rootfs.join("usr/bin/tool"), b"tool").unwrap();
        let out = dir.path().join("layout");
        let w = write(&out, &rootfs, &run(), "example.org/tool", "1.2.3").unwrap();

        let index: Value =
            serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"][0]["digest"], w.manifest.digest);
        assert_eq!(index["manifests"][0]["annotations"][REF_NAME], "1.2.3");
        assert_eq!(
            index["manifests"][0]["annotations"][CONTAINERD_NAME],
            "example.org/tool:1.2.3"
        );
        let manifest: Value =
            serde_json::from_slice(&fs::read(w.manifest.blob(&out)).unwrap()).unwrap();
        assert_eq!(manifest["config"]["digest"], w.config.digest);
        assert_eq!(manifest["layers"][0]["digest"], w.layer.digest);
        assert_eq!(manifest["layers"][0]["mediaType"], LAYER_GZIP);
        for d in [&w.manifest, &w.config, &w.layer] {
            let bytes = fs::read(d.blob(&out)).unwrap();
            assert_eq!(sha256(&bytes), d.digest);
            assert_eq!(bytes.len() as u64, d.size);
        }
        // diff_id is the digest of the uncompressed tar.
        let config: Value =
            serde_json::from_slice(&fs::read(w.config.blob(&out)).unwrap()).unwrap();
        let tar = layer::write_tar(&layer::entries(&rootfs).unwrap(), Vec::new()).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256(&tar));
        assert_eq!(config["config"]["Entrypoint"][0], "/usr/bin/tool");
        assert!(config.get("created").is_none());

        let unpacked = unpack(&out, "1.2.3", &dir.path().join("unpacked")).unwrap();
        assert_eq!(unpacked.manifest_digest, w.manifest.digest);
        assert_eq!(
            fs::read(dir.path().join("unpacked/usr/bin/tool")).unwrap(),
            b"tool"
        );
    }

    #[test]
    fn unpack_refuses_a_blob_that_does_not_match_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        fs::create_dir_all(&rootfs).unwrap();
        let out = dir.path().join("layout");
        let w = write(&out, &rootfs, &run(), "example.org/tool", "1.2.3").unwrap();
        fs::write(w.layer.blob(&out), b"tampered").unwrap();
        let err = unpack(&out, "1.2.3", &dir.path().join("u")).unwrap_err();
        assert!(err.to_string().contains("hashes to"), "{err}");
        let err = unpack(&out, "9.9.9", &dir.path().join("u")).unwrap_err();
        assert!(
            err.to_string().contains("no manifest tagged 9.9.9"),
            "{err}"
        );
    }
}
