//! `agent-image --profgen BIN --out DIR`: writes profgen's agent image as an OCI image layout
//! (what `cargo xtask image` runs after building profgen) and prints its digest.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use profgen_demo::image::write_agent_image;

#[derive(Debug, Parser)]
#[command(about = "Write profgen's agent image (an OCI image layout) from a built profgen")]
struct Args {
    /// The profgen binary to ship (a release build with the eBPF programs).
    #[arg(long)]
    profgen: PathBuf,
    /// The layout directory to write (replaced once the new one is complete).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let image = write_agent_image(&args.profgen, &args.out)
        .with_context(|| format!("writing the agent image to {}", args.out.display()))?;
    let w = &image.written;
    println!("layout: {}", image.dir.display());
    println!("image:  {}", image.reference());
    println!(
        "layer:  {} bytes gzip'd ({}), manifest {} bytes",
        w.layer.size, w.layer.digest, w.manifest.size
    );
    println!("digest: {}", w.manifest.digest);
    println!("pin:    {}", image.pinned());
    Ok(())
}
