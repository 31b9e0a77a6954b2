//! `profgen pull`: collect the agents' results.

use std::path::PathBuf;

use anyhow::Context as _;
use profgen::k8s;

/// Collect profile sets from agents (`profgen agent --listen`) into OUT/<ns>/<workload>/,
/// merging replicas recorded on different nodes.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Agent URLs, e.g. `http://10.244.0.7:8420` (one per node).
    #[arg(long = "from", value_name = "URL", required = true, num_args = 1..)]
    from: Vec<String>,
    /// Where the merged profile sets go.
    #[arg(long, short, value_name = "DIR", default_value = "profiles")]
    out: PathBuf,
}

pub fn run(args: PullArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the event loop")?;
    let index = runtime.block_on(k8s::pull::pull(&args.from, &args.out))?;
    super::record::print_sets(&index, &args.out);
    eprintln!(
        "profgen: pulled {} profile set(s) from {} agent(s) into {}",
        index.sets.len(),
        args.from.len(),
        args.out.display()
    );
    Ok(())
}
