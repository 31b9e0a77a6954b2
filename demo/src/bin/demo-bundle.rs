//! `demo-bundle --dir DIR --port PORT [--cgroups-path P] [--seccomp recording|none|FILE]`:
//! builds the demo's OCI bundle, for running it by hand or from scripts.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use profgen_demo::{build_bundle, seccomp, BundleOptions};

#[derive(Debug, Parser)]
#[command(about = "Build the OCI bundle of profgen's demo (nginx serving a static site)")]
struct Args {
    /// Bundle directory; must not contain a rootfs yet.
    #[arg(long)]
    dir: PathBuf,
    /// nginx listens on 127.0.0.1:PORT.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// linux.cgroupsPath, e.g. /profgen/demo.
    #[arg(long)]
    cgroups_path: Option<String>,
    /// `recording` (permissive filter, for profgen record), `none`, or a profile JSON file.
    #[arg(long, default_value = "recording")]
    seccomp: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut opts = BundleOptions::new(args.port);
    opts.cgroups_path = args.cgroups_path;
    opts.seccomp = match args.seccomp.as_str() {
        "recording" => Some(seccomp::recording()),
        "none" => None,
        file => {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
            Some(serde_json::from_str(&text).with_context(|| format!("parsing {file}"))?)
        }
    };
    let bundle = build_bundle(&args.dir, &opts)
        .with_context(|| format!("building the bundle in {}", args.dir.display()))?;
    println!("bundle: {}", bundle.dir.display());
    println!("url:    {}", bundle.url());
    println!("probe:  {}", bundle.probe_path);
    Ok(())
}
