//! `profgen synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {}
pub fn run(_args: SynthArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
